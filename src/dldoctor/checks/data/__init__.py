"""Stage 4, "check the data": imbalance, size, label noise, leakage and shift, read through the loaders."""
