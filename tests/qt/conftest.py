"""Fixtures of the GUI tests (pytest-qt, real widgets, real VTK under Xvfb).

QSettings never touch the user's settings: the INI paths of the whole session point to a
temporary folder, and each main window gets its own settings file.
"""
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings, QThreadPool

from micro3d_gui.core.planes import volume_plane_images
from micro3d_gui.preprocess.synthetic import lamellae


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a small shared CI machine, torch's OpenMP threads spinning
    against the GUI thread made a tiny training step 5-30x slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session", autouse=True)
def _isolated_qsettings(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("qsettings"))
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, folder)
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    yield folder


@pytest.fixture(autouse=True)
def _no_worker_left_behind():
    """A test that leaves a worker thread running fails here rather than crash the next."""
    yield
    assert QThreadPool.globalInstance().waitForDone(60_000), "a worker thread did not end"


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "micro3d-gui.ini"), QSettings.Format.IniFormat)


class Recorder:
    """Stands in for the modal boxes of ``micro3d_gui.qt.dialogs`` (they would block)."""

    def __init__(self):
        self.errors: list[tuple[str, str]] = []
        self.questions: list[tuple[str, str]] = []
        self.answer = True
        #: "Save changes?" boxes asked, and the button pressed ("save", "discard",
        #: "cancel"; Discard by default, so that a test's window closes as it is).
        self.save_questions: list[tuple[str, str]] = []
        self.save_answer = "discard"

    def show_error(self, parent, title, text):
        self.errors.append((title, text))

    def ask(self, parent, title, text):
        self.questions.append((title, text))
        return self.answer

    def ask_save_changes(self, parent, title, text):
        self.save_questions.append((title, text))
        return self.save_answer


@pytest.fixture
def boxes(monkeypatch):
    """Record error boxes and answer questions (``boxes.answer``, default Yes)."""
    from micro3d_gui.qt import dialogs

    rec = Recorder()
    monkeypatch.setattr(dialogs, "show_error", rec.show_error)
    monkeypatch.setattr(dialogs, "ask", rec.ask)
    monkeypatch.setattr(dialogs, "ask_save_changes", rec.ask_save_changes)
    return rec


@pytest.fixture
def window(qtbot, settings, boxes):
    """The main window, shown, on the test's settings; its jobs cancelled at the end."""
    from micro3d_gui.qt.main_window import MainWindow

    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.cancel_jobs()
    win.close()


@pytest.fixture
def errors(boxes):
    """The (title, text) of every error box shown."""
    return boxes.errors


def write_plane_pngs(root, volume, step=2):
    """Plane images of a label volume as PNG folders ``root/{xy,xz,yz}`` (0 / 255 grey)."""
    dirs = {}
    for plane, ims in volume_plane_images(volume, step=step).items():
        d = root / plane
        d.mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(ims):
            Image.fromarray((im * 255).astype(np.uint8)).save(d / f"{plane}_{i:03d}.png")
        dirs[plane] = d
    return dirs


@pytest.fixture
def micrograph_dirs(tmp_path):
    """Three folders of synthetic lamellar micrographs (layers normal to x), 24-32 px."""
    return write_plane_pngs(tmp_path / "micrographs", lamellae((24, 24, 32), axis=2, seed=0))
