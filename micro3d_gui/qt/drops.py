"""What a drag and drop carries: the local files, for every drop target of the app."""
from __future__ import annotations

from pathlib import Path


def local_paths(mime) -> list[Path]:
    """Local file/folder paths in a drag's mime data (web URLs are ignored)."""
    if not mime.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
