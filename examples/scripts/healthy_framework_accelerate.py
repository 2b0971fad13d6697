# EXPECT: healthy
"""A plain MLP loop on synthetic teacher-labelled data, wrapped by Hugging Face Accelerate on CPU.

Tempts: accelerator.backward(loss) instead of loss.backward(), and prepare() swapping the optimizer
and DataLoader for Accelerate's wrappers (AcceleratedOptimizer, DataLoaderShard) around the real ones.
"""
import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

N_FEATURES, N_CLASSES = 20, 4


def make_data(n, seed):
    """Gaussian inputs labelled by a fixed random linear teacher (argmax of its four scores)."""
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(N_FEATURES, N_CLASSES, generator=torch.Generator().manual_seed(123))
    X = torch.randn(n, N_FEATURES, generator=g)
    return TensorDataset(X, (X @ teacher).argmax(dim=1))


def evaluate(accelerator, model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            preds, y = accelerator.gather_for_metrics((model(x).argmax(dim=1), y))
            correct += (preds == y).sum().item()
            total += len(y)
    return correct / total


if __name__ == "__main__":
    torch.manual_seed(0)
    accelerator = Accelerator(cpu=True)
    model = nn.Sequential(nn.Linear(N_FEATURES, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, N_CLASSES))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    train_loader = DataLoader(make_data(2048, seed=1), batch_size=64, shuffle=True,
                              generator=torch.Generator().manual_seed(0))
    val_loader = DataLoader(make_data(1024, seed=2), batch_size=256)
    loss_fn = nn.CrossEntropyLoss()
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)

    steps = 0
    for epoch in range(5):  # 32 steps an epoch: 160 optimizer steps
        model.train()
        total_loss = 0.0
        for x, y in train_loader:
            loss = loss_fn(model(x), y)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            total_loss += loss.item()
            steps += 1
        acc = evaluate(accelerator, model, val_loader)
        accelerator.print(f"epoch {epoch + 1}  loss {total_loss / len(train_loader):.4f}  val_accuracy {acc:.4f}")
    accelerator.print(f"steps {steps}  val_accuracy {acc:.4f}")
