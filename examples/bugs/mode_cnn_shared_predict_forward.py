# EXPECT: wrong-mode
# A CNN with batch norm and dropout on scikit-learn's 8x8 digits; one helper runs a batch for training and validation.
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model(width=16):
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3),
        nn.Linear(2 * width * 4 * 4, 10),
    )


def make_datasets():
    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 1, 8, 8).astype("float32") / 16.0
    X = (X - X.mean()) / X.std()
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    return (TensorDataset(torch.from_numpy(X_tr), torch.from_numpy(y_tr)),
            TensorDataset(torch.from_numpy(X_va), torch.from_numpy(y_va)))


def predict(model, batch):
    model.eval()
    images, labels = batch
    return model(images), labels


def dldoctor_spec(lr=1e-3, batch_size=64):
    train, val = make_datasets()
    return {
        "model": make_model,
        "train_loader": DataLoader(train, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "val_loader": DataLoader(val, batch_size=256),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.Adam(params, lr=lr),
        "forward": predict,
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        model.train()
        for batch in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](*predict(model, batch))
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            acc = sum((predict(model, b)[0].argmax(1) == b[1]).sum().item() for b in spec["val_loader"]) / 360
        print(f"epoch {epoch}: loss {loss.item():.4f}  val_accuracy {acc:.3f}")
