"""Entry point of the desktop app (``micro3d-gui``)."""
from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    print("The Micro3D desktop app is coming soon; meanwhile use the 'micro3d' command "
          "(try 'micro3d demo').")
    return 0
