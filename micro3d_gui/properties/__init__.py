"""Effective properties of label volumes ``[z, y, x]``: diffusivity (TauFactor) and
elastic / thermal homogenization (FFT solver). No Qt here."""
from __future__ import annotations


class PropertyCancelled(Exception):
    """A property computation stopped because its progress callback asked for it."""
