# EXPECT: input-pipeline-bottleneck
"""Keyword-spotting toy: classify synthetic 1-second "recordings" (three tone
patterns plus noise) from their log spectrogram with a small MLP.

The Dataset synthesises each waveform and computes its spectrogram frame by frame
in a Python loop inside __getitem__, every time an item is fetched, in the main
process (num_workers=0, nothing cached). Fetching a batch takes far longer than the
forward/backward/step of the tiny model, so the training step waits on the data.
"""
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

SR, N_FFT, HOP = 8000, 256, 64


class ToneDataset(Dataset):
    def __init__(self, n, seed):
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, 3, size=n)
        self.seeds = rng.integers(0, 2**31, size=n)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        rng = np.random.default_rng(self.seeds[i])
        t = np.arange(SR) / SR
        base = [440.0, 660.0, 880.0][self.labels[i]] * rng.uniform(0.97, 1.03)
        wave = np.sin(2 * np.pi * base * t) * np.exp(-3 * t) + 0.8 * rng.standard_normal(SR)
        frames = []
        for start in range(0, SR - N_FFT, HOP):
            frame = wave[start:start + N_FFT] * np.hanning(N_FFT)
            frames.append(np.log1p(np.abs(np.fft.rfft(frame))))
        spec = np.stack(frames).mean(axis=0)
        return torch.tensor((spec - spec.mean()) / spec.std(), dtype=torch.float32), int(self.labels[i])


torch.manual_seed(0)
train_loader = DataLoader(ToneDataset(640, seed=0), batch_size=32, shuffle=True)
val_loader = DataLoader(ToneDataset(192, seed=1), batch_size=64)

model = nn.Sequential(nn.Linear(N_FFT // 2 + 1, 64), nn.ReLU(), nn.Linear(64, 3))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
criterion = nn.CrossEntropyLoss()

for epoch in range(3):
    model.train()
    total = 0.0
    for spec, label in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(spec), label)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(label)
    model.eval()
    with torch.no_grad():
        correct = sum((model(s).argmax(1) == label).sum().item() for s, label in val_loader)
    print(f"epoch {epoch + 1}: loss {total / len(train_loader.dataset):.4f}  val acc {correct / 192:.3f}")
