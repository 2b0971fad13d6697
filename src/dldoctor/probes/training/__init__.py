"""Training probes: a budgeted short training run, and the memoised runs the
evaluate-stage checks share."""
