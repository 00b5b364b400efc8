"""``python -m micro3d_gui``: the desktop app."""
import sys

from .gui import main

sys.exit(main())
