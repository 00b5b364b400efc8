"""Synthetic anisotropic materials with a known 3D truth (seeded, deterministic).

Every generator returns uint8 phase labels ``[Z, Y, X]`` of any requested shape, draws all
its randomness from ``numpy.random.default_rng(seed)`` (same seed -> same volume) and works
in voxel units. Axis numbers follow the volume order: 0 = z, 1 = y, 2 = x.

- :func:`lamellae`: layers normal to one axis (the CLI demo material).
- :func:`fibre_composite`: wavy, slightly misaligned cylinders in a matrix, periodic.
- :func:`separator`: elongated pores of a thresholded anisotropic Gaussian field, periodic.
- :func:`electrode`: pore / elongated active particles / binder film on the particles,
  periodic.

:data:`MATERIALS` names the three anisotropic materials with defaults sized for 64^3 demo
volumes: ``MATERIALS["fibres"].make((64, 64, 64), seed=0)``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree


Shape = tuple[int, int, int]


def _check_shape(shape) -> Shape:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be three positive sizes (Z, Y, X), got {shape}")
    return shape  # type: ignore[return-value]


def _check_fraction(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return float(value)


def lamellae(shape: tuple[int, int, int], axis: int = 2, mean_thickness: float = 4.0,
             fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """Layers normal to ``axis`` (0 = z, 1 = y, 2 = x) of random thickness.

    Returns uint8 labels ``[Z, Y, X]``: phase 1 layers take about ``fraction`` of the
    volume; thicknesses are geometric with the given mean (in voxels).
    """
    rng = np.random.default_rng(seed)
    n = shape[axis]
    profile = np.zeros(n, dtype=np.uint8)
    pos, phase = 0, int(rng.random() < fraction)
    while pos < n:
        mean = mean_thickness * (fraction if phase else 1 - fraction) * 2
        width = max(1, int(rng.geometric(1.0 / max(mean, 1.0))))
        profile[pos:pos + width] = phase
        pos += width
        phase = 1 - phase
    view = [1, 1, 1]
    view[axis] = n
    return np.broadcast_to(profile.reshape(view), shape).copy()


# --------------------------------------------------------------------------- fibres

def _wrap(d: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Minimum-image displacement in a periodic box."""
    return d - box * np.round(d / box)


def _into_box(pos: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Wrap positions into ``[0, box)`` (``%`` alone can round up to ``box``)."""
    pos = pos % box
    return np.where(pos >= box, 0.0, pos)


def _relax_fibres(centres: np.ndarray, offsets: np.ndarray, box: np.ndarray,
                  min_distance: float, max_iter: int) -> tuple[np.ndarray, bool]:
    """Push fibre centres apart until no two paths come closer than ``min_distance``.

    ``centres [n, 2]`` are mean positions in the cross-section, ``offsets [n, T, 2]`` each
    fibre's wavy displacement at T sample points along the axis. Overlapping pairs move
    apart, half the overlap each, along their displacement where the paths are closest.
    Returns the centres and whether the packing cleared within ``max_iter`` sweeps.
    """
    pos = centres.copy()
    reach = np.linalg.norm(offsets, axis=2).max(axis=1)  # how far each path strays
    target = min_distance * 1.001  # a hair over, so that rounding cannot leave a touch
    for _ in range(max_iter):
        pos = _into_box(pos, box)
        tree = cKDTree(pos, boxsize=box)
        pairs = tree.query_pairs(min_distance + 2 * reach.max(), output_type="ndarray")
        if len(pairs) == 0:
            return pos, True
        i, j = pairs[:, 0], pairs[:, 1]
        diff = _wrap((pos[i] - pos[j])[:, None, :] + offsets[i] - offsets[j], box)  # [P, T, 2]
        dist = np.linalg.norm(diff, axis=2)
        k = dist.argmin(axis=1)
        dmin = dist[np.arange(len(k)), k]
        over = dmin < min_distance
        if not over.any():
            return pos, True
        i, j, k, dmin = i[over], j[over], k[over], dmin[over]
        d = diff[over, k]
        # Coincident paths have no direction: pick a fixed one (deterministic).
        unit = np.where(dmin[:, None] > 1e-9, d / np.maximum(dmin, 1e-9)[:, None], [1.0, 0.0])
        push = 0.5 * (target - dmin)[:, None] * unit
        move = np.zeros_like(pos)
        np.add.at(move, i, push)
        np.add.at(move, j, -push)
        pos = pos + move
    return _into_box(pos, box), False


def fibre_composite(shape: tuple[int, int, int], fraction: float = 0.5, radius: float = 3.0,
                    axis: int = 2, misalignment_deg: float = 3.0, min_gap: float = 0.5,
                    wavelength: float = 32.0, seed: int = 0) -> np.ndarray:
    """Unidirectional fibre composite: phase 1 = fibre, 0 = matrix, uint8 ``[Z, Y, X]``.

    Fibres run along ``axis`` (0 = z, 1 = y, 2 = x; the default x is the composite's "1"
    direction, matching the Voigt convention 1 = x of :mod:`micro3d_gui.properties`).
    Every section normal to the axis cuts each fibre in a disc of ``radius`` voxels.

    Misalignment: a straight tilted fibre cannot tile a periodic box, so each fibre follows
    a periodic wavy path instead, in a random plane through the axis, whose peak tilt
    ``theta`` is drawn from ``|N(0, misalignment_deg)|``; the waviness has a whole number
    of periods over the box, of about ``wavelength`` voxels each, so the peak offset is
    ``tan(theta) * period / (2 pi)``. ``misalignment_deg = 0`` gives straight fibres.

    Placement: the number of fibres is ``round(fraction * A / (pi radius^2))`` with A the
    cross-section area; their centres start uniformly random and are pushed apart until no
    two paths come closer than ``2 radius + min_gap`` anywhere along the axis. Everything
    wraps periodically in all three directions, so the volume tiles without a seam.
    The fibre fraction is therefore controlled to within half a fibre's area fraction,
    ``pi radius^2 / A / 2``, plus the rasterisation noise of the discs (a few voxels).

    Raises ``ValueError`` when the box cross-section is narrower than one fibre with its
    gap, or when the fibres cannot be packed without overlap (too high ``fraction``,
    ``min_gap`` or misalignment).
    """
    shape = _check_shape(shape)
    fraction = _check_fraction("fraction", fraction)
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0 (z), 1 (y) or 2 (x), got {axis}")
    if radius <= 0 or min_gap < 0 or misalignment_deg < 0 or wavelength <= 0:
        raise ValueError("radius and wavelength must be positive, min_gap and "
                         "misalignment_deg non-negative")
    rng = np.random.default_rng(seed)
    cross = [a for a in range(3) if a != axis]
    length = shape[axis]
    box = np.array([shape[a] for a in cross], dtype=float)
    min_distance = 2 * radius + min_gap
    if box.min() < min_distance:
        raise ValueError(
            f"the box cross-section {int(box[0])}x{int(box[1])} voxels is narrower than one "
            f"fibre with its gap ({min_distance:g} voxels); use a larger shape or radius")
    n = int(round(fraction * box.prod() / (math.pi * radius ** 2)))

    centres = rng.uniform(0, 1, size=(n, 2)) * box
    theta = np.abs(rng.normal(0.0, math.radians(misalignment_deg), size=n))
    plane_angle = rng.uniform(0, 2 * math.pi, size=n)
    phase = rng.uniform(0, 2 * math.pi, size=n)
    periods = max(1, int(round(length / wavelength)))
    period = length / periods
    amplitude = np.tan(np.minimum(theta, math.radians(80))) * period / (2 * math.pi)
    direction = np.stack([np.cos(plane_angle), np.sin(plane_angle)], axis=1)

    def offsets(t: np.ndarray) -> np.ndarray:
        """Wavy displacement ``[n, len(t), 2]`` of every fibre at axis positions ``t``."""
        wave = amplitude[:, None] * np.sin(2 * math.pi * t[None, :] / period + phase[:, None])
        return wave[:, :, None] * direction[:, None, :]

    # All paths share one period, so their distances repeat with it: 16 samples suffice.
    samples = np.arange(16) * period / 16 if amplitude.any() else np.zeros(1)
    if n > 1:
        # Uniform random centres leave Poisson voids that separating overlaps alone never
        # fills: first spread them at most of the spacing of a hexagonal packing (a few
        # sweeps, not to convergence), then clear overlaps at the real minimum distance.
        spacing = math.sqrt(2 * box.prod() / (math.sqrt(3) * n))
        centres, _ = _relax_fibres(centres, np.zeros((n, 1, 2)), box,
                                   max(min_distance, 0.9 * spacing), max_iter=30)
        centres, packed = _relax_fibres(centres, offsets(samples), box, min_distance,
                                        max_iter=max(2000, 20 * n))
        if not packed:
            raise ValueError(
                f"could not pack {n} fibres of radius {radius:g} (fraction {fraction:g}) "
                f"without overlap in a {int(box[0])}x{int(box[1])} cross-section; lower "
                "fraction, min_gap or misalignment_deg")

    # Rasterise: in every section t along the axis, a disc of the given radius around each
    # fibre's path (voxel centres at integer coordinates), wrapped periodically.
    out = np.zeros((length, *box.astype(int)), dtype=np.uint8)
    reach = int(math.ceil(radius)) + 1
    local = np.arange(-reach, reach + 1)
    t = np.arange(length, dtype=float)
    for chunk in range(0, n, 64):  # bounded memory: [64, length, K, K]
        c = centres[chunk:chunk + 64, None, :] + offsets(t)[chunk:chunk + 64]  # [m, L, 2]
        base = np.floor(c).astype(int)
        u = base[..., 0, None, None] + local[:, None]  # [m, L, K, 1]
        v = base[..., 1, None, None] + local[None, :]  # [m, L, 1, K]
        inside = ((u - c[..., 0, None, None]) ** 2
                  + (v - c[..., 1, None, None]) ** 2) <= radius ** 2
        tt = np.broadcast_to(np.arange(length)[None, :, None, None], inside.shape)
        uu = np.broadcast_to(u % out.shape[1], inside.shape)
        vv = np.broadcast_to(v % out.shape[2], inside.shape)
        out[tt[inside], uu[inside], vv[inside]] = 1
    # out is [axis, cross[0], cross[1]]; put the fibre axis back in its place.
    return np.ascontiguousarray(np.moveaxis(out, 0, axis))


# --------------------------------------------------------------------------- separator

def gaussian_random_field(shape: tuple[int, int, int], sigma: tuple[float, float, float],
                          seed: int = 0) -> np.ndarray:
    """Periodic white noise smoothed by a Gaussian of std ``sigma`` (z, y, x) voxels.

    Filtered in Fourier space, so the field is exactly periodic for any shape and any
    sigma (a spatial filter would truncate the kernel). Its covariance is close to
    ``exp(-r^2 / (4 sigma^2))`` along each axis. Returns float64 ``[Z, Y, X]``.
    """
    shape = _check_shape(shape)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(shape)
    spectrum = np.fft.rfftn(noise)
    freqs = [np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]), np.fft.rfftfreq(shape[2])]
    transfer = np.ones(spectrum.shape)
    for a, (f, s) in enumerate(zip(freqs, sigma)):
        view = [1, 1, 1]
        view[a] = len(f)
        transfer = transfer * np.exp(-2 * (math.pi * s * f) ** 2).reshape(view)
    return np.fft.irfftn(spectrum * transfer, s=shape, axes=(0, 1, 2))


def _lowest(values: np.ndarray, count: int) -> np.ndarray:
    """Boolean mask of exactly ``count`` lowest entries (ties broken by position)."""
    mask = np.zeros(values.size, dtype=bool)
    if count > 0:
        mask[np.argpartition(values.ravel(), count - 1)[:count]] = True
    return mask.reshape(values.shape)


def separator(shape: tuple[int, int, int], porosity: float = 0.45,
              correlation_lengths: tuple[float, float, float] = (2.0, 4.0, 12.0),
              seed: int = 0) -> np.ndarray:
    """Porous separator membrane: 0 = solid (polymer), 1 = pore, uint8 ``[Z, Y, X]``.

    A Gaussian random field (white noise smoothed by a Gaussian whose std along z, y, x is
    ``correlation_lengths`` voxels, periodic) thresholded so that exactly
    ``round(porosity * volume)`` voxels are pore. Pores are longest along the axis with
    the longest correlation length (x by default, the machine direction of a stretched
    film); their mean chord length along an axis grows in proportion to its length. The
    volume tiles periodically. Porosity is exact to one voxel.
    """
    shape = _check_shape(shape)
    porosity = _check_fraction("porosity", porosity)
    if len(correlation_lengths) != 3 or min(correlation_lengths) <= 0:
        raise ValueError(f"correlation_lengths must be three positive lengths (z, y, x), "
                         f"got {correlation_lengths}")
    field_ = gaussian_random_field(shape, correlation_lengths, seed)
    count = int(round(porosity * field_.size))
    return _lowest(field_, count).astype(np.uint8)


# --------------------------------------------------------------------------- electrode

def _ellipsoid_region(shape: Shape, centre: np.ndarray, semi_axes: np.ndarray):
    """Index grid and mask of a periodic ellipsoid: ``mask[sel] |= inside`` draws it."""
    index, dist = [], []
    for n, c, a in zip(shape, centre, semi_axes):
        if 2 * math.ceil(a) + 2 >= n:  # as big as the box: every index, nearest image
            idx = np.arange(n)
        else:
            idx = np.arange(math.floor(c - a), math.floor(c + a) + 2) % n
        index.append(idx)
        dist.append(((idx - c + n / 2) % n - n / 2) / a)
    inside = (dist[0][:, None, None] ** 2 + dist[1][None, :, None] ** 2
              + dist[2][None, None, :] ** 2) <= 1.0
    return np.ix_(*index), inside


def _periodic_distance(solid: np.ndarray, margin: int) -> np.ndarray:
    """Euclidean distance of every voxel to ``solid``, exact up to ``margin`` voxels.

    The array is padded periodically by ``margin`` before the transform, so distances of
    at most ``margin`` across the box faces are right; larger ones come out larger.
    """
    pad = np.pad(~solid, margin, mode="wrap")
    dist = ndimage.distance_transform_edt(pad)
    return dist[tuple(slice(margin, margin + n) for n in solid.shape)]


def electrode(shape: tuple[int, int, int],
              fractions: tuple[float, float, float] = (0.35, 0.45, 0.20),
              particle_radius: float = 5.0,
              elongation: tuple[float, float, float] = (1.0, 1.0, 1.6),
              radius_spread: float = 0.2, seed: int = 0) -> np.ndarray:
    """Three-phase battery electrode, uint8 ``[Z, Y, X]``: 0 = pore, 1 = active, 2 = binder.

    ``fractions`` = (pore, active, binder) volume fractions, summing to 1.

    - Active material: overlapping ellipsoids with semi-axes ``particle_radius *
      elongation`` (z, y, x) voxels times a per-particle factor uniform in
      ``1 +- radius_spread``, all aligned, so the material is anisotropic (longest along x
      by default). Centres are uniform (a Boolean model), wrapped periodically; particles
      are added until the active fraction is as close as it gets to its target: within
      half of one particle's volume fraction.
    - Binder: a film on the particles: the pore voxels nearest to the active phase
      (periodic Euclidean distance; ties broken at random), exactly
      ``round(binder * volume)`` of them. Its thickness follows from the fraction (about
      one voxel for the defaults). Every binder voxel reaches a particle through binder.
      (When the pore fraction is near 0 and the particles overshoot, the binder takes
      what is left.)
    - Pore: the rest, so it carries the active phase's small error.
    """
    shape = _check_shape(shape)
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers (pore, active, "
                         f"binder) summing to 1, got {fractions}")
    if particle_radius <= 0 or len(elongation) != 3 or min(elongation) <= 0:
        raise ValueError("particle_radius and the elongation factors must be positive")
    if not 0 <= radius_spread < 1:
        raise ValueError(f"radius_spread must lie in [0, 1), got {radius_spread}")
    rng = np.random.default_rng(seed)
    size = float(np.prod(shape))
    active = np.zeros(shape, dtype=bool)
    target = fractions[1] * size
    count = 0
    semi = particle_radius * np.asarray(elongation, dtype=float)
    while count < target:
        centre = rng.uniform(0, 1, size=3) * np.asarray(shape)
        scale = rng.uniform(1 - radius_spread, 1 + radius_spread)
        sel, inside = _ellipsoid_region(shape, centre, semi * scale)
        before = active[sel]
        added = int(np.count_nonzero(inside & ~before))
        if count + added - target > target - count:
            break  # this particle would overshoot more than leaving it out undershoots
        active[sel] = before | inside
        count += added

    labels = active.astype(np.uint8)
    pore = ~active
    # The active phase may overshoot by part of a particle: the binder then takes what is left.
    binder = min(int(round(fractions[2] * size)), int(np.count_nonzero(pore)))
    if binder and active.any():
        margin = 4
        while True:
            dist = _periodic_distance(active, margin)[pore]
            cut = np.partition(dist, binder - 1)[binder - 1]  # distance of the last one taken
            if cut <= margin or margin >= max(shape):
                break
            margin *= 2  # the film is thicker than the exact range: widen it
        # All pore voxels nearer than the cut, and a random choice of those at the cut.
        nearer = np.flatnonzero(dist < cut)
        at_cut = np.flatnonzero(dist == cut)
        chosen = np.concatenate([nearer, rng.permutation(at_cut)[:binder - len(nearer)]])
        labels.ravel()[np.flatnonzero(pore.ravel())[chosen]] = 2
    elif binder:
        labels.ravel()[rng.permutation(labels.size)[:binder]] = 2
    return labels


# --------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class Material:
    """A named synthetic material with demo defaults.

    ``make(shape, seed)`` calls ``generator(shape, seed=seed, **params)`` and returns uint8
    labels ``[Z, Y, X]`` in ``0..num_phases-1``; ``phase_names[k]`` names phase k.
    """

    name: str
    generator: Callable[..., np.ndarray]
    num_phases: int
    phase_names: tuple[str, ...]
    description: str
    params: Mapping[str, object] = field(default_factory=dict)

    def make(self, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
        return self.generator(shape, seed=seed, **self.params)


MATERIALS: Mapping[str, Material] = MappingProxyType({
    "fibres": Material(
        "fibres", fibre_composite, 2, ("matrix", "fibre"),
        "unidirectional fibre composite, fibres along x, 50 % fibres of radius 3 voxels, "
        "3 degrees misalignment",
        MappingProxyType(dict(fraction=0.5, radius=3.0, axis=2, misalignment_deg=3.0,
                              min_gap=0.5, wavelength=32.0))),
    "separator": Material(
        "separator", separator, 2, ("solid", "pore"),
        "porous separator, 45 % porosity, pores elongated along x "
        "(correlation lengths z, y, x = 2, 4, 12 voxels)",
        MappingProxyType(dict(porosity=0.45, correlation_lengths=(2.0, 4.0, 12.0)))),
    "electrode": Material(
        "electrode", electrode, 3, ("pore", "active", "binder"),
        "three-phase electrode: 35 % pore, 45 % active particles (radius 5 voxels, 1.6x "
        "longer along x), 20 % binder film",
        MappingProxyType(dict(fractions=(0.35, 0.45, 0.20), particle_radius=5.0,
                              elongation=(1.0, 1.0, 1.6), radius_spread=0.2))),
})

