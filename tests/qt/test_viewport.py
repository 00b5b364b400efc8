"""The 3D viewport: real VTK renders under Xvfb, in-place updates, axis orientation."""
import numpy as np
import pytest

from micro3d_gui.preprocess.synthetic import lamellae
from micro3d_gui.qt.viewport import VIEW_MODES, Viewport


@pytest.fixture
def viewport(qtbot):
    vp = Viewport()
    qtbot.addWidget(vp)
    vp.resize(480, 400)
    vp.show()
    qtbot.waitExposed(vp)
    yield vp
    vp.shutdown()


def is_uniform(img: np.ndarray) -> bool:
    return bool((img == img.reshape(-1, img.shape[-1])[0]).all())


@pytest.mark.parametrize("mode", VIEW_MODES)
def test_each_mode_renders_a_non_blank_image(viewport, mode):
    viewport.set_mode(mode)
    viewport.set_volume(lamellae((12, 16, 20), axis=2, seed=0), 2)
    img = viewport.screenshot()
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert not is_uniform(img)
    # Enough non-background pixels to be a drawing, not a stray dot (white background).
    assert (img.min(axis=-1) < 200).mean() > 0.01


def test_empty_scene_is_blank_then_volume_is_not(viewport):
    # The renderer check itself can fail: with nothing added only the axes widget shows.
    before = viewport.screenshot()
    viewport.set_volume(lamellae((12, 16, 20), axis=2, seed=0), 2)
    after = viewport.screenshot()
    assert (after.min(axis=-1) < 200).sum() > 5 * (before.min(axis=-1) < 200).sum()


def test_same_shape_updates_in_place(viewport):
    vol_a = lamellae((12, 16, 20), axis=2, seed=0)
    vol_b = lamellae((12, 16, 20), axis=2, seed=5)
    viewport.set_volume(vol_a, 2)
    slabs = dict(viewport._slabs)
    actors = set(viewport.plotter.renderer.actors)
    img_a = viewport.screenshot()
    viewport.set_volume(vol_b, 2)
    assert viewport.update_count == 2
    # Same meshes and actors, new values: nothing was rebuilt.
    assert all(viewport._slabs[a] is slabs[a] for a in slabs)
    assert set(viewport.plotter.renderer.actors) == actors
    z, y, x = (n // 2 for n in vol_b.shape)
    np.testing.assert_array_equal(viewport._slabs["z"].cell_data["phase"], vol_b[z].ravel())
    np.testing.assert_array_equal(viewport._slabs["y"].cell_data["phase"], vol_b[:, y].ravel())
    np.testing.assert_array_equal(viewport._slabs["x"].cell_data["phase"],
                                  vol_b[:, :, x].ravel())
    assert not np.array_equal(viewport.screenshot(), img_a)


def test_surfaces_update_in_place_and_follow_the_labels(viewport):
    viewport.set_mode("surfaces")
    vol = np.zeros((6, 8, 10), np.uint8)
    vol[:, :, :4] = 1  # phase 1 fills x < 4
    viewport.set_volume(vol, 2)
    surface = viewport._surface
    # VTK x, y, z are the volume's x, y, z (columns, rows, slices).
    np.testing.assert_allclose(surface.bounds, (0, 4, 0, 8, 0, 6))
    vol2 = np.zeros_like(vol)
    vol2[:3] = 1  # now phase 1 fills z < 3
    viewport.set_volume(vol2, 2)
    assert viewport._surface is surface
    np.testing.assert_allclose(surface.bounds, (0, 10, 0, 8, 0, 3))


def test_surfaces_of_an_empty_phase_and_back(viewport):
    viewport.set_mode("surfaces")
    viewport.set_volume(np.zeros((6, 8, 10), np.uint8), 2)
    assert viewport._surface.n_cells == 0
    viewport.set_volume(lamellae((6, 8, 10), axis=2, seed=0), 2)
    assert viewport._surface.n_cells > 0
    assert not is_uniform(viewport.screenshot())


def test_three_phases_and_shape_change_rebuild(viewport):
    rng = np.random.default_rng(0)
    viewport.set_volume(rng.integers(0, 3, (8, 8, 8), dtype=np.uint8), 3)
    viewport.set_volume(rng.integers(0, 3, (10, 12, 14), dtype=np.uint8), 3)
    assert [s.maximum() for s in viewport.sliders.values()] == [9, 11, 13]
    img = viewport.screenshot()
    # Three phase colours plus background and outline: many distinct colours.
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 4


def test_slider_moves_the_slice(viewport):
    vol = np.zeros((8, 8, 8), np.uint8)
    vol[2] = 1
    viewport.set_volume(vol, 2)
    assert viewport._slabs["z"].cell_data["phase"].max() == 0  # slice z = 4
    viewport.sliders["z"].setValue(2)
    assert viewport._slabs["z"].cell_data["phase"].min() == 1
    assert viewport._slabs["z"].origin[2] == 2


def test_mode_combo_switches_and_bad_mode_is_refused(viewport):
    viewport.set_volume(lamellae((8, 8, 8), axis=2, seed=0), 2)
    viewport.mode_combo.setCurrentText("outline")
    assert viewport.mode == "outline"
    assert not is_uniform(viewport.screenshot())
    with pytest.raises(ValueError, match="view mode"):
        viewport.set_mode("volume")
    with pytest.raises(ValueError, match="Z, Y, X"):
        viewport.set_volume(np.zeros((4, 4), np.uint8), 2)
