"""The size check of a model file before it is unpacked.

A model file is a zip archive (what ``torch.save`` writes) whose records are all *stored*,
not compressed: torch writes the pickle and every tensor as plain bytes. A record
compressed with deflate can declare gigabytes in a few kB (a zip bomb), and torch's reader
inflates each record whole before anything can look at it. So the archive's central
directory (at the end of the file, a few hundred bytes per record) is read first, and a
file is refused unless every record is stored and their declared sizes add up to no more
than the file itself holds. Nothing is decompressed.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

from ..errors import CheckpointError


def stored_zip_bytes(path: str | os.PathLike) -> int:
    """The bytes the records of the zip archive ``path`` unpack to (their declared sizes
    added up); :class:`CheckpointError` naming the file when it is not a zip, a record is
    compressed (torch never compresses one) or the declared sizes exceed the file's."""
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as archive:  # reads only the central directory
            records = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise CheckpointError(f"{p}: not a readable Micro3D model ({type(exc).__name__}: "
                              f"{exc}); it may be truncated or from another program") from None
    size = p.stat().st_size
    for info in records:
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(
                f"{p}: record {info.filename!r} is compressed (zip method "
                f"{info.compress_type}), which torch.save never writes; refused unopened "
                "(a compressed record can unpack to gigabytes); save the model again with "
                "Micro3D, or re-zip it without compression")
    total = sum(info.file_size for info in records)
    if total > size or any(info.compress_size != info.file_size for info in records):
        raise CheckpointError(
            f"{p}: its records declare {total:,} bytes but the file holds {size:,}; it is "
            "damaged or edited: train or copy the model again")
    return total
