"""Stage 5 checks: hyper-parameters."""
