"""Data-stage probes: a sample of each split read through its loader, features, and
the measurements made on them (duplicates, label noise, shift, the user's model per fold)."""
