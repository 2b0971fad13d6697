"""Stages 3-5: compare to baselines and known results, decompose the error, read logs."""
