"""Micro3D: 3D anisotropic microstructures from 2D micrographs of three planes."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    #: The installed distribution's version (pyproject.toml is its one definition).
    __version__ = _version("micro3d-gui")
except PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"
