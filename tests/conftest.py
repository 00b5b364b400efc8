import numpy as np
import pytest
import torch
from PIL import Image

from micro3d_gui.core.planes import volume_plane_images
from micro3d_gui.preprocess.synthetic import lamellae


def write_planes(root, volume, step=2, scale=255):
    """Write a label volume's plane images as PNG folders root/{xy,xz,yz}; returns the dirs."""
    dirs = {}
    for plane, ims in volume_plane_images(volume, step=step).items():
        d = root / plane
        d.mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(ims):
            Image.fromarray((im * scale).astype(np.uint8)).save(d / f"{plane}_{i}.png")
        dirs[plane] = d
    return dirs


@pytest.fixture
def lamella_dirs(tmp_path):
    return write_planes(tmp_path / "planes", lamellae((16, 16, 32), axis=2, seed=0))


@pytest.fixture
def plane_writer():
    """:func:`write_planes` for tests that make their own volumes."""
    return write_planes


@pytest.fixture
def torch_threads():
    """``torch_threads(n)`` sets torch's thread count for the test; the count it had is
    given back after."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.fixture
def one_thread(torch_threads):
    """One torch thread for the test."""
    torch_threads(1)
