"""Overfit-stage probes: training on one batch, a larger model variant, and the
memoised experiments the overfit checks share."""
