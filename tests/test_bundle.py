"""The double-click app: build the PyInstaller bundle (build_spec/micro3d.spec) into a
temporary folder, then run the frozen executable's self-test and open its window.

Slow and big (several minutes, ~1.6 GB of disk): skipped unless ``MICRO3D_BUILD_BUNDLE=1``:

    MICRO3D_BUILD_BUNDLE=1 xvfb-run -a python3 -m pytest tests/test_bundle.py
"""
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from micro3d_gui import selftest

ROOT = Path(__file__).resolve().parent.parent
EXE = "micro3d.exe" if sys.platform.startswith("win") else "micro3d"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("MICRO3D_BUILD_BUNDLE") != "1",
        reason="builds the PyInstaller bundle (several minutes, ~1.6 GB of disk): "
               "set MICRO3D_BUILD_BUNDLE=1 to run it"),
]


def clean_env(**extra):
    """The environment without overrides of the bundle's own data and Qt binding."""
    env = {k: v for k, v in os.environ.items() if k not in ("MICRO3D_DATA", "QT_API")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """``<tmp>/dist/micro3d``, built from this checkout."""
    if not (ROOT / "models" / "fibres.pt").is_file():
        pytest.fail("models/fibres.pt is missing: the bundle ships the demo model; "
                    "train it first (bash models/train_models.sh)")
    tmp = tmp_path_factory.mktemp("bundle")
    res = subprocess.run(
        [sys.executable, "-m", "PyInstaller", str(ROOT / "build_spec" / "micro3d.spec"),
         "--noconfirm", "--distpath", str(tmp / "dist"), "--workpath", str(tmp / "build")],
        cwd=ROOT, capture_output=True, text=True, timeout=3600, env=clean_env())
    assert res.returncode == 0, res.stderr[-5000:]
    shutil.rmtree(tmp / "build")
    yield tmp / "dist" / "micro3d"
    shutil.rmtree(tmp)  # 1.4 GB: not left for pytest's kept temporary folders


def test_bundle_holds_the_data_and_leaves_out_the_unneeded(bundle):
    internal = bundle / "_internal"
    demo = internal / "resources" / "demo" / "fibres"
    assert all(len(list((demo / p).glob("*.png"))) == 32 for p in ("xy", "xz", "yz"))
    model = internal / "models" / "fibres.pt"
    assert model.stat().st_size == (ROOT / "models" / "fibres.pt").stat().st_size
    assert model.stat().st_mode & stat.S_IROTH  # readable by every user of an install
    assert not list((internal / "models").glob("*.log"))
    assert (internal / "resources" / "icons" / "micro3d.png").is_file()
    assert not list(internal.joinpath("resources").rglob("*.py"))
    if sys.platform.startswith("linux"):
        assert (internal / "PySide6" / "Qt" / "plugins" / "platforms" / "libqxcb.so").is_file()
    for unneeded in ("torch/include", "torch/test", "tkinter", "jedi", "cryptography"):
        assert not (internal / unneeded).exists(), unneeded
    # not all of VTK: neither VTK-m (viskores) nor the WebXR / testing modules
    vtk_files = [p.name for p in (internal / "vtkmodules").iterdir()]
    assert (internal / "vtkmodules").is_dir() and any("vtkRenderingOpenGL2" in f for f in vtk_files)
    assert not [f for f in vtk_files if "viskores" in f or "WebXR" in f or "Testing" in f]
    torch_bin = Path(torch.__file__).parent / "bin"
    if torch_bin.is_dir():
        # torch's test programs stay behind; its shared-memory manager is needed
        assert sorted(p.name for p in (internal / "torch" / "bin").iterdir()) == sorted(
            p.name for p in torch_bin.glob("torch_shm_manager*"))


def test_frozen_self_test_passes(bundle):
    res = subprocess.run([str(bundle / EXE), "--self-test"], capture_output=True, text=True,
                         timeout=600, env=clean_env())
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [f"ok   {c}" for c in selftest.CHECKS]
    assert str(bundle / "_internal" / "models" / "fibres.pt") in lines[1]
    assert lines[-1].startswith("self-test passed (frozen app")
    assert str(bundle / "_internal") in lines[-1]


def test_frozen_self_test_fails_without_a_model(bundle, tmp_path):
    # a data root with the demo micrographs but no model: one FAIL line, exit 1
    (tmp_path / "models").mkdir()
    (tmp_path / "resources").symlink_to(bundle / "_internal" / "resources")
    res = subprocess.run([str(bundle / EXE), "--self-test"], capture_output=True, text=True,
                         timeout=600, env=clean_env(MICRO3D_DATA=str(tmp_path)))
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1].startswith("FAIL model: CheckpointError:")
    assert "Traceback" not in res.stdout + res.stderr


@pytest.mark.skipif(not os.environ.get("DISPLAY") or not shutil.which("xwininfo"),
                    reason="needs an X display (xvfb-run) and xwininfo")
def test_frozen_app_opens_its_window(bundle):
    # the whole GUI stack frozen: Qt's xcb plugin, PySide6, pyvistaqt, VTK in a window
    proc = subprocess.Popen([str(bundle / EXE)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        deadline = time.monotonic() + 180
        shown = False
        while time.monotonic() < deadline and proc.poll() is None and not shown:
            time.sleep(2)
            tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True,
                                  text=True).stdout
            shown = '"Micro3D' in tree
        alive = proc.poll() is None
    finally:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    assert alive and shown, f"exit {proc.returncode}\n{out[-3000:]}\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
