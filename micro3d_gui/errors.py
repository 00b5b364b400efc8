"""Errors about the user's input (files, folders, options, models, materials, outputs), with
messages that name the file and the fix. The lowest layer: it imports nothing of ours."""
from __future__ import annotations


class InputError(Exception):
    """Bad user input (file, folder, option). ``str(err)`` is a full sentence for the user."""


class ImageReadError(InputError):
    """A file could not be read as an image."""


class DatasetError(InputError):
    """Images that cannot form a training set together."""


class SegmentationError(InputError):
    """Micrographs or options that cannot be segmented into phases as asked."""


class CheckpointError(InputError):
    """A file that is not a usable Micro3D model."""


class MaterialsError(InputError):
    """A materials file (elastic constants per phase) that cannot be used."""


class ExportError(InputError):
    """An export that cannot be written as asked (format, voxel size, volume)."""


class OutputError(InputError, OSError):
    """An output path that cannot be written (a folder, no permission, a full disk).

    Also an OSError, so code that guards writes with ``except OSError`` still catches it.
    """
