# EXPECT: healthy
"""A tiny GAN that learns a correlated 2-D Gaussian, with one Adam per network.

Tempts `no-gradient-flow` and `stale-gradients`: each optimizer holds only its own
network, so at every step half of the model's parameters get no update; the
discriminator sees `fake.detach()`, and the generator's backward() also writes
gradients into the discriminator. All of that is the standard GAN recipe: each
optimizer clears its own gradients right before its own backward().
"""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
NOISE_DIM = 8
TRUE_MEAN = torch.tensor([2.0, -1.0])
TRUE_COV = torch.tensor([[1.0, 0.6], [0.6, 0.5]])

real_data = torch.distributions.MultivariateNormal(TRUE_MEAN, TRUE_COV).sample((4096,))
loader = DataLoader(TensorDataset(real_data), batch_size=128, shuffle=True)

generator = nn.Sequential(
    nn.Linear(NOISE_DIM, 32), nn.LeakyReLU(0.2), nn.Linear(32, 32), nn.LeakyReLU(0.2), nn.Linear(32, 2)
)
discriminator = nn.Sequential(
    nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1)
)
opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
bce = nn.BCEWithLogitsLoss()

for epoch in range(15):
    d_total = g_total = 0.0
    for (real,) in loader:
        n = real.size(0)
        fake = generator(torch.randn(n, NOISE_DIM))

        opt_d.zero_grad()
        d_loss = bce(discriminator(real), torch.ones(n, 1)) + bce(discriminator(fake.detach()), torch.zeros(n, 1))
        d_loss.backward()
        opt_d.step()

        opt_g.zero_grad()
        g_loss = bce(discriminator(fake), torch.ones(n, 1))
        g_loss.backward()
        opt_g.step()
        d_total += d_loss.item()
        g_total += g_loss.item()

    with torch.no_grad():
        sample = generator(torch.randn(2000, NOISE_DIM))
    mean, cov = sample.mean(0), torch.cov(sample.T)
    print(f"epoch {epoch + 1:2d}  D {d_total / len(loader):.3f}  G {g_total / len(loader):.3f}  "
          f"mean ({mean[0]:.2f}, {mean[1]:.2f})  var ({cov[0, 0]:.2f}, {cov[1, 1]:.2f})  cov {cov[0, 1]:.2f}")
