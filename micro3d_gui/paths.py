"""Where the bundled demo micrographs and models are.

A source checkout (or an editable install) keeps ``resources/`` and ``models/`` beside the
package; a PyInstaller bundle puts them beside the executable's unpacked files
(``sys._MEIPASS``). ``MICRO3D_DATA`` (a folder holding both) overrides either, for installs that
put the data elsewhere.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

DEMO_MATERIAL = "fibres"


def data_root() -> Path:
    """The folder that holds ``resources/`` and ``models/``."""
    if os.environ.get("MICRO3D_DATA"):
        return Path(os.environ["MICRO3D_DATA"])
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle)
    return Path(__file__).resolve().parent.parent


def resources_dir() -> Path:
    return data_root() / "resources"


def models_dir() -> Path:
    return data_root() / "models"


def demo_dir(material: str = DEMO_MATERIAL) -> Path:
    """``resources/demo/<material>`` with ``xy/``, ``xz/``, ``yz/`` and ``truth.tif``."""
    return resources_dir() / "demo" / material


def demo_model(material: str = DEMO_MATERIAL) -> Path:
    """``models/<material>.pt`` (may not exist in a checkout without bundled models)."""
    return models_dir() / f"{material}.pt"


def demo_materials() -> list[str]:
    """Materials that have demo micrographs."""
    root = resources_dir() / "demo"
    return sorted(p.name for p in root.iterdir() if (p / "xy").is_dir()) if root.is_dir() else []
