"""What a trained model's checks are made of: its weights load, its training loss stayed finite."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class WeightsFindings:
    load_error: str | None      # why the stored weights do not load (None: they do)
    losses: list[dict]          # per epoch: {"epoch": n, <loss name>: value or None, ...}

    @property
    def loadable(self) -> bool:
        return self.load_error is None

    @property
    def loss_finite(self) -> bool:
        """Some loss was recorded, and every recorded one is a finite number."""
        values = [v for row in self.losses for k, v in row.items() if k != "epoch" and v is not None]
        return bool(values) and all(math.isfinite(v) for v in values)

    @property
    def curve(self) -> pd.DataFrame:
        """Losses by epoch (the loss plot)."""
        return pd.DataFrame(self.losses).set_index("epoch") if self.losses else pd.DataFrame()
