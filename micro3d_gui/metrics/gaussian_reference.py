"""The Gaussian reference of a phase: a level-cut Gaussian random field with the phase's own
3D two-point function (Quiblier's construction), so that what S2 alone fixes can be told
apart from what a structure adds beyond it (particles' necks, fibres' runs).

The phase's indicator ``I`` of fraction ``f`` has the periodic 3D autocorrelation
``S2(r) = <I(x) I(x + r)>`` over every lag ``r`` (FFT). A standard Gaussian field ``g`` with
correlation ``rho(r)``, cut at ``c = Phi^-1(1 - f)``, has ``P(g(x) > c, g(x + r) > c) =
Phi2(-c, -c; rho(r))``; inverting that (monotone in rho) at each lag gives the ``rho(r)``
whose cut has the phase's S2. Its spectrum colours white noise. An S2 measured on a finite
volume is noisy at long lags, which gives that spectrum negative parts that no covariance
has; a Hann taper over half the box damps them (the rest is clipped at zero), since
clipping alone lost the shortest lags' correlation. Volumes are ``[Z, Y, X]``; lags in
voxels, periodic. No torch.
"""
from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy import stats

#: Correlations tabulated for the inversion (the ends left out: Phi2 is flat there).
_RHO = np.linspace(-0.999, 0.9999, 801)


def two_point_3d(indicator: np.ndarray) -> np.ndarray:
    """Periodic S2 of a boolean volume ``[Z, Y, X]`` at every lag (same shape; ``[0, 0, 0]``
    is the fraction)."""
    spectrum = np.abs(sfft.rfftn(indicator.astype(np.float64))) ** 2
    return sfft.irfftn(spectrum, s=indicator.shape, axes=(0, 1, 2)) / indicator.size


def gaussian_correlation(s2: np.ndarray, fraction: float) -> np.ndarray:
    """The correlation ``rho(r)`` of a standard Gaussian field whose cut at
    ``Phi^-1(1 - fraction)`` has two-point function ``s2`` (any shape)."""
    c = stats.norm.ppf(1.0 - fraction)
    joint = np.array([stats.multivariate_normal.cdf([-c, -c], cov=[[1.0, r], [r, 1.0]])
                      for r in _RHO])
    order = np.argsort(joint)  # increasing in rho; sorted against rounding in the cdf
    return np.interp(s2, joint[order], _RHO[order])


def _hann(shape: tuple[int, ...]) -> np.ndarray:
    """A separable Hann window over periodic lags: 1 at lag 0, 0 at half the box."""
    window = np.ones(shape)
    for axis, n in enumerate(shape):
        lag = np.minimum(np.arange(n), n - np.arange(n)) / (n / 2)
        along = [1] * len(shape)
        along[axis] = n
        window = window * (0.5 * (1 + np.cos(np.pi * lag))).reshape(along)
    return window


def gaussian_reference(indicator: np.ndarray, count: int, rng: np.random.Generator
                       ) -> np.ndarray:
    """``count`` boolean volumes of ``indicator``'s shape ``[Z, Y, X]``: level cuts of
    independent Gaussian fields with its 3D S2, each holding exactly its fraction of voxels
    (cut at the field's own quantile) -> ``[count, Z, Y, X]``."""
    indicator = np.asarray(indicator, dtype=bool)
    fraction = float(indicator.mean())
    if not 0.0 < fraction < 1.0:
        raise ValueError("the phase must fill part of the volume, not none or all of it")
    rho = gaussian_correlation(two_point_3d(indicator), fraction) * _hann(indicator.shape)
    amplitude = np.sqrt(np.clip(sfft.rfftn(rho).real, 0.0, None))
    out = np.empty((count, *indicator.shape), dtype=bool)
    keep = int(round(fraction * indicator.size))
    for n in range(count):
        field = sfft.irfftn(amplitude * sfft.rfftn(rng.standard_normal(indicator.shape)),
                              s=indicator.shape, axes=(0, 1, 2)).ravel()
        top = np.argpartition(field, field.size - keep)[field.size - keep:]
        cut = np.zeros(field.size, dtype=bool)
        cut[top] = True
        out[n] = cut.reshape(indicator.shape)
    return out
