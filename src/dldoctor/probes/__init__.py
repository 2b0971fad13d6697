"""Probes measure. They run the user's model on copies, record plain numbers, and
leave no trace: hooks are removed and RNG state is restored in ``finally``."""
