"""The ordered stages of the troubleshooting method (see the methodology)."""

from __future__ import annotations

import enum


class Stage(enum.IntEnum):
    """A stage of the method. Checks run stage by stage, in this order.

    The order is also the order of explanation: a root cause found at an earlier
    stage (a crash, a wiring bug) explains symptoms found at later ones.
    """

    RUN = 1
    """Get it running: crashes, shapes, dtypes, devices, silent wiring bugs."""
    OVERFIT = 2
    """Overfit a single batch and read the curve."""
    COMPARE = 3
    """Compare to a known result and to simple baselines."""
    DATA = 4
    """Check the data: imbalance, leakage, label noise, distribution shift."""
    EVALUATE = 5
    """Bias-variance decomposition of a short training run."""
    TUNE = 6
    """Tune hyper-parameters."""

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Stage:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown stage {text!r}; expected one of: {names}") from None
