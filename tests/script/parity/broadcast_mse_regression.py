"""An MLP regressor on scikit-learn's diabetes data whose (N, 1) output meets an (N,)
target in nn.MSELoss (which broadcasts them to N x N): examples/bugs/broadcast_mlp_diabetes_mse.py
written as an ordinary script with a module-level loop."""
import torch
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X, y = load_diabetes(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
scaler = StandardScaler().fit(X_train)
y_mean, y_std = y_train.mean(), y_train.std()
train = TensorDataset(torch.tensor(scaler.transform(X_train), dtype=torch.float32),
                      torch.tensor((y_train - y_mean) / y_std, dtype=torch.float32))
val = TensorDataset(torch.tensor(scaler.transform(X_val), dtype=torch.float32),
                    torch.tensor((y_val - y_mean) / y_std, dtype=torch.float32))
train_loader = DataLoader(train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(val, batch_size=128)

model = nn.Sequential(
    nn.Linear(10, 32), nn.ReLU(),
    nn.Linear(32, 32), nn.ReLU(),
    nn.Linear(32, 1),
)
criterion = nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

for epoch in range(20):
    model.train()
    for features, target in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(features), target)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        val_loss = sum(criterion(model(features), target).item() for features, target in val_loader)
    print(f"epoch {epoch}: loss {loss.item():.4f}  val loss {val_loss / len(val_loader):.4f}")
