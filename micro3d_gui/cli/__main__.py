"""``python -m micro3d_gui.cli``: the ``micro3d`` command (what torchrun starts per rank)."""
import sys

from . import main

sys.exit(main())
