"""Draw the app icon: an isometric cube of voxels, fibres (phase 1) running through a matrix
(phase 0), in the 3D view's phase colours. Deterministic (no randomness, no metadata):
rerunning rewrites the same bytes for a given Pillow version.

    python3 resources/icons/make_icon.py      # -> micro3d.png (256 x 256), micro3d.ico
"""
from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SIZE = 256
SUPERSAMPLE = 4  # drawn 4x larger and shrunk: antialiased edges
N = 5  # voxels per cube edge
#: (x, y) of the fibres, which run along z; on the cube's faces x = N-1 or y = N-1 they
#: show as stripes, on the top as squares.
FIBRES = {(1, 1), (3, 0), (4, 2), (0, 3), (2, 4), (4, 4), (2, 2)}
#: phase -> base colour (micro3d_gui.qt.palette.PHASE_HEX[0:2])
COLOURS = {0: (0x3B, 0x4A, 0x6B), 1: (0xF2, 0xB1, 0x34)}
#: brightness of the faces whose normals are +z (top), +x and +y
SHADE = {"z": 1.0, "x": 0.78, "y": 0.58}


def shade(rgb: tuple[int, int, int], f: float) -> tuple[int, int, int, int]:
    return (*(min(255, round(c * f)) for c in rgb), 255)


def draw(size: int = SIZE) -> Image.Image:
    big = size * SUPERSAMPLE
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(img)
    # isometric projection: the cube's silhouette (a hexagon) fills ~90 % of the canvas
    edge = 0.9 * big / (2 * N)
    cx, cy = big / 2, big / 2
    cos30, sin30 = math.cos(math.pi / 6), 0.5

    def project(x: float, y: float, z: float) -> tuple[float, float]:
        u, v, w = x - N / 2, y - N / 2, z - N / 2
        return cx + (u - v) * cos30 * edge, cy + (u + v) * sin30 * edge - w * edge

    # the three visible faces of voxel (x, y, z), as corner offsets
    faces = {
        "z": ((0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)),
        "x": ((1, 0, 0), (1, 1, 0), (1, 1, 1), (1, 0, 1)),
        "y": ((0, 1, 0), (1, 1, 0), (1, 1, 1), (0, 1, 1)),
    }
    outline = (0x1C, 0x22, 0x33, 255)
    # painter's algorithm: the viewer looks from (+x, +y, +z), so draw by increasing x+y+z
    for x, y, z in sorted(((x, y, z) for x in range(N) for y in range(N) for z in range(N)),
                          key=lambda p: (sum(p), p)):
        phase = 1 if (x, y) in FIBRES else 0
        for name, corners in faces.items():
            pts = [project(x + a, y + b, z + c) for a, b, c in corners]
            pen.polygon(pts, fill=shade(COLOURS[phase], SHADE[name]), outline=outline,
                        width=max(1, SUPERSAMPLE))
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    icon = draw()
    icon.save(HERE / "micro3d.png", optimize=False)
    icon.save(HERE / "micro3d.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])


if __name__ == "__main__":
    main()
