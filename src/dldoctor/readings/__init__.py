"""Readings interpret measurements: pure functions from numbers to verdicts and wording.

A reading never runs the model or reads data (that is what ``probes`` do) and never
reports on its own: checks turn readings into findings. Readings may import probes,
core and below, never checks or the CLI.
"""
