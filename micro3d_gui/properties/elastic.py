"""Effective stiffness and thermal expansion of a voxel volume by an FFT-based solver.

Periodic linear (thermo-)elasticity on the voxel grid of a ``[z, y, x]`` label volume with
isotropic phases. Each load case solves the Lippmann-Schwinger / Galerkin form of
equilibrium (Moulinec & Suquet 1998; Zeman et al. 2010; Vondrejc et al. 2014): find the
compatible, zero-mean strain fluctuation ``e~`` with

    G0[ C(x) : (E + e~) - beta(x) dT ] = 0,      beta = C : alpha (thermal stress),

by conjugate gradients preconditioned with the Green operator ``G0`` of an isotropic
reference medium ``C0``. ``G0`` maps a stress-like field to the compatible strain that
balances it in ``C0``; in Fourier space, with ``n = xi / |xi|``,

    G0(n) : tau = sym(n (x) N(n) tau n),   N(n) = (I - (l0 + m0) / (l0 + 2 m0) n (x) n) / m0.

With ``C0`` the geometric mean of the phases' bulk and shear moduli the iteration count
grows only with the square root of the contrast (fibre / epoxy: about 40-60 for 1e-5).
Fourier modes where one axis sits at its Nyquist index and another axis carries a
non-Nyquist frequency have no consistent real representation on even grids and are
left out of the trial space (laminates stay exact).

Tensor fields are torch tensors ``[6, Z, Y, X]`` with components in Voigt order
``xx, yy, zz, yz, xz, xy`` (1 = x, 2 = y, 3 = z); strains are tensor components (the
shear entries are half the engineering shear). Units: moduli in GPa (stresses in GPa for
a unit strain), CTE in 1/K; voxels are cubes (the result does not depend on their size).
"""
from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import MaterialsError
from ..io.json_file import read_json
from . import PropertyCancelled

VOIGT = ("11", "22", "33", "23", "13", "12")  # 1 = x, 2 = y, 3 = z
#: Weight of each stored component in the double contraction a : b (shears count twice).
_WEIGHTS = (1.0, 1.0, 1.0, 2.0, 2.0, 2.0)
LOAD_CASES = 7  # six unit macro strains and one unit temperature rise


@dataclass(frozen=True)
class Material:
    """An isotropic phase: Young's modulus ``E`` (GPa), Poisson ratio ``nu`` and linear
    thermal expansion coefficient ``cte`` (1/K)."""

    E: float
    nu: float
    cte: float

    @property
    def lam(self) -> float:
        """Lame's first parameter (GPa)."""
        return self.E * self.nu / ((1 + self.nu) * (1 - 2 * self.nu))

    @property
    def mu(self) -> float:
        """Shear modulus (GPa)."""
        return self.E / (2 * (1 + self.nu))

    @property
    def bulk(self) -> float:
        """Bulk modulus (GPa)."""
        return self.E / (3 * (1 - 2 * self.nu))

    def stiffness(self) -> np.ndarray:
        """6x6 Voigt stiffness (GPa), engineering shear strains."""
        c = np.zeros((6, 6))
        c[:3, :3] = self.lam
        c[np.arange(3), np.arange(3)] += 2 * self.mu
        c[np.arange(3, 6), np.arange(3, 6)] = self.mu
        return c


#: Typical constants, isotropic approximations (the fibre uses its axial E, nu and CTE).
DEFAULT_MATERIALS: dict[int, Material] = {
    0: Material(E=3.5, nu=0.35, cte=60e-6),    # epoxy matrix
    1: Material(E=230.0, nu=0.2, cte=-0.5e-6),  # carbon fibre (T300-like)
    2: Material(E=72.0, nu=0.22, cte=5e-6),     # a third phase: E-glass
}


def _check_material(m: Material, where: str) -> None:
    if not (math.isfinite(m.E) and m.E > 0):
        raise MaterialsError(f"{where}: E must be a positive modulus in GPa, got {m.E}")
    if not (math.isfinite(m.nu) and -1.0 < m.nu < 0.5):
        raise MaterialsError(f"{where}: nu must lie between -1 and 0.5, got {m.nu}")
    if not math.isfinite(m.cte):
        raise MaterialsError(f"{where}: cte must be a number in 1/K, got {m.cte}")


def load_materials(path: str | os.PathLike,
                   defaults: Mapping[int, Material] | None = None) -> dict[int, Material]:
    """Read phase materials from JSON ``{"0": {"E": GPa, "nu": .., "cte": 1/K}, ...}``.

    Phases in the file override those in ``defaults`` (none by default: the result holds
    the file's phases only). Raises :class:`MaterialsError` naming the file on bad content.
    """
    p = Path(path)
    fix = ('write it as JSON like {"0": {"E": 3.5, "nu": 0.35, "cte": 6e-5}, '
           '"1": {"E": 230, "nu": 0.2, "cte": -5e-7}} (E in GPa, cte in 1/K)')
    data = read_json(p, MaterialsError, fix)  # bounded in size and nesting
    if not isinstance(data, dict) or not data:
        raise MaterialsError(f"{p}: expected an object of phases; {fix}")
    out = dict(defaults or {})
    for key, entry in data.items():
        try:
            phase = int(key)
            if phase < 0:
                raise ValueError
        except ValueError:
            raise MaterialsError(f"{p}: key {key!r} is not a phase label (0, 1, ...); {fix}") from None
        if not isinstance(entry, dict) or not {"E", "nu", "cte"} <= set(entry):
            raise MaterialsError(f"{p}: phase {key} needs E, nu and cte; {fix}")
        try:
            mat = Material(E=float(entry["E"]), nu=float(entry["nu"]), cte=float(entry["cte"]))
        except (TypeError, ValueError):
            raise MaterialsError(f"{p}: phase {key} has a value that is not a number; {fix}") from None
        _check_material(mat, f"{p}: phase {key}")
        out[phase] = mat
    return out


@dataclass
class ElasticResult:
    """Homogenized thermo-elastic properties.

    ``stiffness``: 6x6 effective stiffness (GPa), Voigt order 11, 22, 33, 23, 13, 12 with
    1 = x, 2 = y, 3 = z, engineering shear strains. ``compliance``: its inverse (1/GPa).
    ``constants``: E1, E2, E3, G12, G13, G23 (GPa) and nu12, nu13, nu23
    (``nu_ij = -S_ji / S_ii``: contraction along j under stress along i). ``cte``: effective
    thermal expansion tensor a11, a22, a33, a12, a13, a23 (1/K, tensor components).
    ``iterations``: CG iterations of each load case; ``converged``: all reached ``tol``.
    """

    stiffness: np.ndarray
    compliance: np.ndarray
    constants: dict[str, float]
    cte: dict[str, float]
    iterations: list[int] = field(default_factory=list)
    converged: bool = True


@dataclass
class FieldSolution:
    """One solved load case: ``strain`` and ``stress`` ``[6, Z, Y, X]`` numpy arrays
    (tensor components xx, yy, zz, yz, xz, xy; stress in GPa), ``mean_stress`` (Voigt
    6-vector, GPa), CG ``iterations`` and the final relative ``residual``."""

    strain: np.ndarray
    stress: np.ndarray
    mean_stress: np.ndarray
    iterations: int
    residual: float


def default_dtype(device: torch.device) -> torch.dtype:
    """float64 where the device has it (CPU, CUDA); float32 on Apple MPS."""
    return torch.float32 if device.type == "mps" else torch.float64


class _Problem:
    """Per-voxel Lame fields, the reference medium and the Fourier frequency grid."""

    def __init__(self, volume: np.ndarray, materials: Mapping[int, Material],
                 device: torch.device, dtype: torch.dtype):
        vol = np.asarray(volume)
        if vol.dtype == bool:
            vol = vol.astype(np.uint8)
        if vol.ndim != 3:
            raise ValueError(f"expected a [z, y, x] label volume, got shape {vol.shape}")
        if vol.size == 0 or not np.issubdtype(vol.dtype, np.integer) or vol.min() < 0:
            raise ValueError("expected a non-empty volume of integer phase labels 0..K-1")
        present = [int(k) for k in np.unique(vol)]
        missing = [k for k in present if k not in materials]
        if missing:
            raise MaterialsError(
                f"no material given for phase(s) {missing}; add them to the materials file "
                '(JSON {"<phase>": {"E": GPa, "nu": .., "cte": 1/K}})')
        for k in present:
            _check_material(materials[k], f"phase {k}")
        self.shape = vol.shape
        self.device, self.dtype = device, dtype
        top = max(present) + 1
        table = {name: torch.zeros(top, dtype=dtype) for name in ("lam", "mu", "beta")}
        for k in present:
            m = materials[k]
            table["lam"][k], table["mu"][k] = m.lam, m.mu
            table["beta"][k] = 3 * m.bulk * m.cte  # C : alpha = 3 K alpha I
        labels = torch.as_tensor(vol.astype(np.int64), device=device)
        self.lam = table["lam"].to(device)[labels]
        self.mu = table["mu"].to(device)[labels]
        self.beta = table["beta"].to(device)[labels]
        # Reference medium: geometric means, which balance the CG spectrum.
        ks = [materials[k].bulk for k in present]
        mus = [materials[k].mu for k in present]
        k0, self.mu0 = math.sqrt(min(ks) * max(ks)), math.sqrt(min(mus) * max(mus))
        self.lam0 = k0 - 2 * self.mu0 / 3
        self.c0 = (self.lam0 + self.mu0) / (self.lam0 + 2 * self.mu0)
        n = self._directions()
        self.n_re = tuple(a.unsqueeze(-1) for a in n)  # broadcast over (real, imag)
        self.m_re = tuple(a / self.mu0 for a in self.n_re)
        self.weights = torch.tensor(_WEIGHTS, dtype=dtype, device=device).view(6, 1, 1, 1)

    def _directions(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unit wave vectors (n_x, n_y, n_z) on the rfft grid [Z, Y, X//2+1]; zero at the
        mean and at the mixed Nyquist modes (see the module docstring)."""
        nz_, ny_, nx_ = self.shape
        opts = dict(dtype=self.dtype, device=self.device)
        idx = [torch.arange(nz_, device=self.device), torch.arange(ny_, device=self.device),
               torch.arange(nx_ // 2 + 1, device=self.device)]
        freq = [torch.fft.fftfreq(nz_, **opts), torch.fft.fftfreq(ny_, **opts),
                torch.fft.rfftfreq(nx_, **opts)]
        kz, ky, kx = torch.meshgrid(*freq, indexing="ij")
        nyq = [(i == n // 2) if n % 2 == 0 else torch.zeros_like(i, dtype=torch.bool)
               for i, n in zip(idx, self.shape)]
        nyq_z, nyq_y, nyq_x = torch.meshgrid(*nyq, indexing="ij")
        any_nyq = nyq_z | nyq_y | nyq_x
        other = ((kz != 0) & ~nyq_z) | ((ky != 0) & ~nyq_y) | ((kx != 0) & ~nyq_x)
        norm = torch.sqrt(kx * kx + ky * ky + kz * kz)
        keep = (norm > 0) & ~(any_nyq & other)
        scale = torch.where(keep, 1.0 / torch.where(norm > 0, norm, 1.0), 0.0)
        return kx * scale, ky * scale, kz * scale

    def stiff(self, eps: torch.Tensor) -> torch.Tensor:
        """sigma = C(x) : eps (isotropic: lam tr(eps) I + 2 mu eps)."""
        sig = 2 * self.mu * eps
        sig[:3] += self.lam * (eps[0] + eps[1] + eps[2])
        return sig

    def dot(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """Sum over voxels of a : b."""
        return float(torch.sum(self.weights * a * b))

    def ref_compliance_norm(self, tau: torch.Tensor) -> float:
        """Sum over voxels of tau : C0^-1 : tau (the scale of a load's residual)."""
        tr = tau[0] + tau[1] + tau[2]
        s = self.dot(tau, tau) / (2 * self.mu0)
        return s - float(torch.sum(tr * tr)) * self.lam0 / (2 * self.mu0 * (3 * self.lam0 + 2 * self.mu0))

    def green(self, tau: torch.Tensor) -> torch.Tensor:
        """G0 : tau -> compatible zero-mean strain field balancing tau in C0."""
        # Real view of the spectrum: real x real products are about twice as fast as the
        # complex x real ones torch would otherwise do.
        t = torch.view_as_real(torch.fft.rfftn(tau, dim=(1, 2, 3)))  # [6, Z, Y, X', 2]
        nx, ny, nz = self.n_re
        mx, my, mz = self.m_re
        vx = torch.addcmul(torch.addcmul(t[0] * nx, t[5], ny), t[4], nz)  # tau . n
        vy = torch.addcmul(torch.addcmul(t[5] * nx, t[1], ny), t[3], nz)
        vz = torch.addcmul(torch.addcmul(t[4] * nx, t[3], ny), t[2], nz)
        nv = torch.addcmul(torch.addcmul(vx * nx, vy, ny), vz, nz).mul_(self.c0)
        vx.sub_(nv * nx)  # u = N tau n, up to the factor 1 / mu0 carried by m = n / mu0
        vy.sub_(nv * ny)
        vz.sub_(nv * nz)
        e = torch.empty_like(t)
        torch.mul(mx, vx, out=e[0])
        torch.mul(my, vy, out=e[1])
        torch.mul(mz, vz, out=e[2])
        e[3] = torch.addcmul(my * vz, mz, vy).mul_(0.5)
        e[4] = torch.addcmul(mx * vz, mz, vx).mul_(0.5)
        e[5] = torch.addcmul(mx * vy, my, vx).mul_(0.5)
        return torch.fft.irfftn(torch.view_as_complex(e), s=self.shape, dim=(1, 2, 3))

    def solve(self, macro_strain: np.ndarray, temperature_rise: float, tol: float,
              max_iter: int, tick: Callable[[int, float], None] | None = None):
        """PCG for one load case -> (strain, stress, iterations, residual)."""
        e_macro = torch.tensor(np.asarray(macro_strain, dtype=float) * (1, 1, 1, .5, .5, .5),
                               dtype=self.dtype, device=self.device).view(6, 1, 1, 1)
        eigen_stress = torch.zeros((6, *self.shape), dtype=self.dtype, device=self.device)
        if temperature_rise:
            eigen_stress[:3] = self.beta * temperature_rise
        b = eigen_stress - self.stiff(e_macro.expand(6, *self.shape))
        scale = self.ref_compliance_norm(b)
        x = torch.zeros_like(b)
        r = b
        z = self.green(r)
        rz = self.dot(r, z)
        res = math.sqrt(max(rz, 0.0) / scale) if scale > 0 else 0.0
        it = 0
        p = z
        while res > tol and it < max_iter:
            if tick is not None:
                tick(it, res)
            q = self.stiff(p)
            alpha = rz / self.dot(p, q)
            x = x + alpha * p
            r = r - alpha * q
            z = self.green(r)
            rz_new = self.dot(r, z)
            it += 1
            res = math.sqrt(max(rz_new, 0.0) / scale)
            p = z + (rz_new / rz) * p
            rz = rz_new
        strain = x + e_macro
        stress = self.stiff(strain) - eigen_stress
        return strain, stress, it, res


def _resolve(device) -> torch.device:
    return device if isinstance(device, torch.device) else torch.device(device)


def solve_load_case(volume: np.ndarray, materials: Mapping[int, Material],
                    macro_strain=(0, 0, 0, 0, 0, 0), temperature_rise: float = 0.0,
                    device: str | torch.device = "cpu", tol: float = 1e-5, max_iter: int = 500,
                    dtype: torch.dtype | None = None) -> FieldSolution:
    """Solve one periodic load case and return its local fields.

    Args:
        volume: ``[z, y, x]`` integer labels; every label present needs a material.
        materials: ``{phase: Material}``.
        macro_strain: imposed mean strain, Voigt 6-vector (11, 22, 33, 23, 13, 12 with
            1 = x, 2 = y, 3 = z; engineering shears, i.e. 2 * eps_23 ...).
        temperature_rise: uniform temperature change (K) acting through each phase's CTE.
        tol: relative equilibrium residual at which CG stops.
    """
    dev = _resolve(device)
    prob = _Problem(volume, materials, dev, dtype or default_dtype(dev))
    strain, stress, it, res = prob.solve(np.asarray(macro_strain, float), temperature_rise,
                                         tol, max_iter)
    mean = stress.mean(dim=(1, 2, 3)).cpu().numpy()
    return FieldSolution(strain.cpu().numpy(), stress.cpu().numpy(), mean, it, res)


def engineering_constants(stiffness: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """6x6 Voigt stiffness -> (compliance, {E1, E2, E3, G12, G13, G23, nu12, nu13, nu23})."""
    s = np.linalg.inv(0.5 * (stiffness + stiffness.T))
    consts = {"E1": 1 / s[0, 0], "E2": 1 / s[1, 1], "E3": 1 / s[2, 2],
              "G12": 1 / s[5, 5], "G13": 1 / s[4, 4], "G23": 1 / s[3, 3],
              "nu12": -s[1, 0] / s[0, 0], "nu13": -s[2, 0] / s[0, 0],
              "nu23": -s[2, 1] / s[1, 1]}
    return s, {k: float(v) for k, v in consts.items()}


def homogenize(volume: np.ndarray, materials: Mapping[int, Material] | None = None,
               device: str | torch.device = "cpu", tol: float = 1e-5, max_iter: int = 500,
               progress: Callable[[float], bool | None] | None = None, *,
               should_stop: Callable[[], bool] | None = None,
               dtype: torch.dtype | None = None) -> ElasticResult:
    """Effective 6x6 stiffness, engineering constants and thermal expansion of a volume.

    Seven periodic load cases: unit macro strains 11, 22, 33, 23, 13, 12 (columns of the
    stiffness) and a unit temperature rise at zero mean strain, whose mean stress gives the
    effective thermal stress ``beta`` and so ``alpha = S : beta`` (zero mean stress).

    Args:
        volume: ``[z, y, x]`` integer labels 0..K-1, cubic voxels (x = axis 2 = direction 1,
            y = axis 1 = direction 2, z = axis 0 = direction 3).
        materials: ``{phase: Material}``; None uses :data:`DEFAULT_MATERIALS`.
        device: torch device; float64 unless ``dtype`` says otherwise (float32 on MPS).
        tol: relative equilibrium residual per load case; max_iter: CG iterations per case.
        progress: ``progress(fraction in [0, 1])`` after each CG iteration; returning True
            raises :class:`PropertyCancelled`. ``should_stop()`` likewise.

    A load case that does not reach ``tol`` gives a RuntimeWarning and ``converged=False``.
    """
    dev = _resolve(device)
    prob = _Problem(volume, DEFAULT_MATERIALS if materials is None else materials, dev,
                    dtype or default_dtype(dev))
    log_tol = math.log(tol)

    def report(frac: float) -> None:
        if (progress is not None and progress(min(frac, 1.0))) or \
                (should_stop is not None and should_stop()):
            raise PropertyCancelled("homogenization cancelled")

    stiffness = np.zeros((6, 6))
    iterations, converged = [], True
    for case in range(LOAD_CASES):
        def tick(it, res, case=case):
            done = 0.0 if res >= 1 or res <= 0 else min(math.log(res) / log_tol, 0.99)
            report((case + done) / LOAD_CASES)

        report(case / LOAD_CASES)
        strain_in = np.zeros(6)
        if case < 6:
            strain_in[case] = 1.0
        _, stress, it, res = prob.solve(strain_in, 0.0 if case < 6 else 1.0, tol, max_iter, tick)
        iterations.append(it)
        converged &= res <= tol
        mean = stress.mean(dim=(1, 2, 3)).cpu().numpy()
        if case < 6:
            stiffness[:, case] = mean
        else:
            thermal_stress = -mean  # beta_eff: stress per kelvin at zero strain, sign flipped
    report(1.0)
    compliance, constants = engineering_constants(stiffness)
    alpha = compliance @ thermal_stress  # engineering strain per kelvin
    cte = {"a11": alpha[0], "a22": alpha[1], "a33": alpha[2],
           "a12": alpha[5] / 2, "a13": alpha[4] / 2, "a23": alpha[3] / 2}
    if not converged:
        warnings.warn(f"homogenization did not reach tol={tol} in {max_iter} iterations "
                      f"(iterations per load case: {iterations})", RuntimeWarning, stacklevel=2)
    return ElasticResult(stiffness, compliance, constants, {k: float(v) for k, v in cte.items()},
                         iterations, bool(converged))
