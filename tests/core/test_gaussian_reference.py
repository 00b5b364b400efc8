"""The Gaussian reference (metrics.gaussian_reference): the periodic 3D S2 against a direct
sum, the inversion against Sheppard's closed form, and the reference's own S2 against the
phase's."""
import numpy as np
import pytest
from scipy import ndimage

from micro3d_gui.metrics.gaussian_reference import (gaussian_correlation, gaussian_reference,
                                                    two_point_3d)


def test_the_3d_two_point_function_is_the_periodic_mean_product_at_every_lag():
    vol = np.random.default_rng(0).random((6, 5, 4)) < 0.4
    s2 = two_point_3d(vol)
    for lag in [(0, 0, 0), (1, 0, 0), (0, 2, 0), (0, 0, 3), (2, 4, 1)]:
        direct = np.mean(vol & np.roll(vol, [-r for r in lag], axis=(0, 1, 2)))
        assert s2[lag] == pytest.approx(direct, abs=1e-12)


@pytest.mark.parametrize("rho", [-0.9, -0.3, 0.0, 0.3, 0.8])
def test_the_inversion_gives_back_sheppards_correlation_at_the_median_cut(rho):
    # Cut at the median, P(X > 0, Y > 0) = 1/4 + arcsin(rho) / (2 pi) (Sheppard, 1899).
    s2 = 0.25 + np.arcsin(rho) / (2 * np.pi)
    assert gaussian_correlation(np.array(s2), 0.5) == pytest.approx(rho, abs=2e-3)


def test_a_reference_holds_the_fraction_and_the_two_point_function_of_its_phase():
    rng = np.random.default_rng(1)
    smooth = ndimage.gaussian_filter(rng.standard_normal((24, 40, 64)), (1.0, 1.5, 3.0),
                                     mode="wrap")
    phase = smooth > np.quantile(smooth, 0.7)  # 30 %, longest along x
    refs = gaussian_reference(phase, 4, np.random.default_rng(2))
    assert refs.shape == (4, 24, 40, 64) and refs.dtype == bool
    assert all(int(r.sum()) == int(phase.sum()) for r in refs)
    want = two_point_3d(phase)
    got = np.mean([two_point_3d(r) for r in refs], axis=0)
    for axis in range(3):
        lags = np.zeros((7, 3), dtype=int)
        lags[:, axis] = np.arange(1, 8)
        w, g = want[tuple(lags.T)], got[tuple(lags.T)]
        assert np.abs(g - w).max() < 0.02, (axis, w, g)
    # and the anisotropy with it: correlated farther along x than along z
    assert got[0, 0, 4] > got[4, 0, 0] + 0.03


def test_a_phase_that_fills_nothing_or_everything_has_no_reference():
    for filled in (False, True):
        with pytest.raises(ValueError, match="part of the volume"):
            gaussian_reference(np.full((4, 4, 4), filled), 1, np.random.default_rng(0))
