"""``micro3d-gui --self-test`` against a temporary data root (``MICRO3D_DATA``) holding demo
micrographs and a tiny model trained for a few steps."""
import subprocess
import sys

import numpy as np
import pytest
import pyvista as pv
from PIL import Image

from micro3d_gui import paths, selftest
from micro3d_gui.core.diffusion.unet import preset_config
from micro3d_gui.core.planes import volume_plane_images
from micro3d_gui.preprocess.synthetic import lamellae
from micro3d_gui.core.plane_dataset import PlaneDataset
from micro3d_gui.core.train_config import TrainConfig
from micro3d_gui.core.training import Trainer

def make_data_root(root, with_model=True):
    """``root/resources/demo/<demo material>/{xy,xz,yz}/*.png`` and ``root/models/<..>.pt``."""
    images = volume_plane_images(lamellae((16, 16, 16), axis=2, seed=0), step=4)
    demo = root / "resources" / "demo" / paths.DEMO_MATERIAL
    for plane, ims in images.items():
        (demo / plane).mkdir(parents=True)
        for i, im in enumerate(ims):
            Image.fromarray(im.astype(np.uint8) * 255).save(demo / plane / f"{plane}_{i:03d}.png")
    (root / "models").mkdir()
    if with_model:
        cfg = TrainConfig(steps=2, batch_size=2, crop=16, seed=0, checkpoint_every=0)
        trainer = Trainer(PlaneDataset(images, 2), preset_config("tiny", 1), cfg)
        trainer.train(checkpoint_path=root / "models" / f"{paths.DEMO_MATERIAL}.pt")
    return root


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_data_root(tmp_path_factory.mktemp("data"))


def test_self_test_passes_and_writes_the_vti(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MICRO3D_DATA", str(data_root))
    lines = []
    rc = selftest.run(out_dir=tmp_path, shape=(8, 12, 16), sampling_steps=3, echo=lines.append)
    assert rc == 0, lines
    assert [line.split(":")[0] for line in lines[:-1]] == [f"ok   {c}" for c in selftest.CHECKS]
    assert "xy 4, xz 4, yz 4 images" in lines[0]
    assert str(data_root / "models" / "fibres.pt") in lines[1] and "step 2" in lines[1]
    assert lines[-1].startswith("self-test passed")
    grid = pv.read(tmp_path / "selftest.vti")
    assert grid.dimensions == (17, 13, 9)  # points: (X, Y, Z) + 1
    phase = np.asarray(grid.cell_data["phase"])
    assert phase.dtype == np.uint8 and set(np.unique(phase)) <= {0, 1}


def test_render_draws_the_phase_voxels():
    # 4^3 box: one corner voxel of phase 1 vs. every voxel; same outline and camera
    # (pyvista frames the whole scene, i.e. the outline, in both)
    corner = np.zeros((4, 4, 4), np.uint8)
    corner[0, 0, 0] = 1
    images = {}
    for name, vol in {"corner": corner, "full": np.ones_like(corner)}.items():
        grid = pv.ImageData(dimensions=(5, 5, 5))
        grid.cell_data["phase"] = vol.ravel()
        images[name], renderer = selftest.render_image(grid, (120, 100))
        assert images[name].shape == (100, 120, 3) and renderer.startswith("vtk")
    outline = selftest.drawn_fraction(images["corner"])
    assert 0 < outline < 0.25 * selftest.drawn_fraction(images["full"])
    assert selftest.drawn_fraction(np.full((4, 5, 3), 255, np.uint8)) == 0.0


def test_entry_point_reports_a_missing_model_without_qt(tmp_path):
    # through the real entry point, in a fresh interpreter: exit 1, the cause in one line,
    # and Qt never imported (the flag is handled before the app starts)
    root = make_data_root(tmp_path / "data", with_model=False)
    code = ("import sys\nfrom micro3d_gui.gui import main\nrc = main(['--self-test'])\n"
            "print('qt loaded:', any(m.startswith('PySide6') for m in sys.modules))\n"
            "sys.exit(rc)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={**_env(), "MICRO3D_DATA": str(root)})
    assert res.returncode == 1, res.stdout + res.stderr
    out = res.stdout.splitlines()
    assert out[0].startswith("ok   resources:")
    assert out[1].startswith("FAIL model: CheckpointError:") and "fibres.pt" in out[1]
    assert "Traceback" not in res.stdout + res.stderr
    assert out[-1] == "qt loaded: False"


def _env():
    import os  # noqa: PLC0415

    return {k: v for k, v in os.environ.items() if k != "MICRO3D_DATA"}
