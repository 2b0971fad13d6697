"""Stage 2, "overfit a single batch": read the curve, confirm the cause by experiment."""
