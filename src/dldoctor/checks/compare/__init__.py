"""Stage 3, "compare to a known result": simple baselines and the user's reference."""
