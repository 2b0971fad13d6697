# EXPECT: numerical-instability
# A CNN that classifies synthetic power spectrograms of tones (4 pitch classes), trained with SGD.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

N_FREQ, N_FRAMES = 32, 32


class SpectrogramCNN(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.fc = nn.Linear(32, num_classes)

    def forward(self, power):
        x = torch.log(power)
        x = (x - x.mean()) / x.std()
        return self.fc(self.conv(x).flatten(1))


def make_dataset(n=512):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (n,), generator=g)
    freqs = torch.arange(N_FREQ).float()
    centre = 4 + 7 * labels.float().view(-1, 1, 1)
    tone = torch.exp(-0.5 * (freqs.view(1, -1, 1) - centre) ** 2)
    power = tone + 0.05 * torch.rand(n, N_FREQ, N_FRAMES, generator=g)
    length = torch.randint(16, N_FRAMES + 1, (n, 1, 1), generator=g)
    power = power * (torch.arange(N_FRAMES).view(1, 1, -1) < length)  # clips are zero-padded
    return TensorDataset(power.unsqueeze(1), labels)


def dldoctor_spec(lr=0.05, batch_size=32):
    return {
        "model": SpectrogramCNN,
        "train_loader": DataLoader(make_dataset(), batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0)),
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": lambda params: torch.optim.SGD(params, lr=lr, momentum=0.9),
    }


if __name__ == "__main__":
    torch.manual_seed(0)
    spec = dldoctor_spec()
    model = spec["model"]()
    optimizer = spec["optimizer"](model.parameters())
    for epoch in range(10):
        for x, y in spec["train_loader"]:
            optimizer.zero_grad()
            loss = spec["loss_fn"](model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.4f}")
