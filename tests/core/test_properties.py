"""Diffusivity (real TauFactor) and FFT homogenization against closed forms and bounds."""
import json

import numpy as np
import pytest
import torch

from micro3d_gui.errors import InputError, MaterialsError
from micro3d_gui.properties import PropertyCancelled
from micro3d_gui.properties.diffusion import diffusivity, diffusivity_all
from micro3d_gui.properties.elastic import (
    DEFAULT_MATERIALS,
    Material,
    homogenize,
    load_materials,
    solve_load_case,
)

AXIS = {"z": 0, "y": 1, "x": 2}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These volumes are tiny: extra threads only add synchronisation (4x slower on a
    busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- diffusivity


def channels(shape, axis):
    """Isolated straight square channels (phase 1) running along array ``axis``."""
    cross = [s for a, s in enumerate(shape) if a != axis]
    mask2d = np.zeros(cross, dtype=np.uint8)
    mask2d[1:3, 1:3] = 1
    mask2d[5:7, 4:6] = 1
    return np.expand_dims(mask2d, axis) * np.ones(shape, np.uint8)


@pytest.mark.parametrize("along", ["z", "y", "x"])
def test_straight_channels_tau_one_along_and_blocked_across(along):
    vol = channels((10, 9, 8), AXIS[along])
    vf = vol.mean()
    res = diffusivity(vol, 1)
    for d in "zyx":
        if d == along:
            assert res["tortuosity"][d] == pytest.approx(1.0, rel=1e-3)
            assert res["relative_diffusivity"][d] == pytest.approx(vf, rel=1e-3)
        else:
            assert res["tortuosity"][d] == np.inf
            assert res["relative_diffusivity"][d] == 0.0


def test_homogeneous_phase_tau_one_and_absent_phase_zero():
    vol = np.zeros((8, 9, 10), np.uint8)
    res = diffusivity_all(vol, 2)
    for d in "zyx":
        assert res[0]["tortuosity"][d] == pytest.approx(1.0, rel=1e-3)
        assert res[0]["relative_diffusivity"][d] == pytest.approx(1.0, rel=1e-3)
        assert res[1]["tortuosity"][d] == np.inf and res[1]["relative_diffusivity"][d] == 0.0


def test_diffusivity_of_a_constriction_is_below_the_volume_fraction():
    vol = np.ones((12, 8, 8), np.uint8)
    vol[6, :, :] = 0
    vol[6, 3:5, 3:5] = 1  # a narrow neck across z
    res = diffusivity(vol, 1)
    assert res["tortuosity"]["z"] > 1.5
    assert 0 < res["relative_diffusivity"]["z"] < vol.mean() / 1.5
    assert res["tortuosity"]["x"] == pytest.approx(res["tortuosity"]["y"], rel=1e-2)
    # too few sweeps to converge: an error, or (not strict, for benchmarks) NaN
    with pytest.raises(RuntimeError, match="did not converge"):
        diffusivity(vol, 1, iter_limit=2)
    loose = diffusivity(vol, 1, iter_limit=2, strict=False)
    assert np.isnan(loose["relative_diffusivity"]["z"]) and np.isnan(loose["tortuosity"]["z"])


def test_diffusivity_cancel():
    vol = channels((8, 8, 8), 0)
    with pytest.raises(PropertyCancelled):
        diffusivity_all(vol, 2, should_stop=lambda: True)
    with pytest.raises(PropertyCancelled):
        diffusivity(vol, 1, progress=lambda f: True)


# ---------------------------------------------------------------- elasticity


def laminate(shape, axis, layers):
    """Phase 1 in the first ``layers`` slices along array ``axis``, phase 0 elsewhere."""
    vol = np.zeros(shape, np.uint8)
    idx = [slice(None)] * 3
    idx[axis] = slice(0, layers)
    vol[tuple(idx)] = 1
    return vol


def test_homogeneous_volume_returns_the_phase_constants():
    mat = DEFAULT_MATERIALS[1]
    res = homogenize(np.ones((6, 7, 8), np.uint8), DEFAULT_MATERIALS)
    np.testing.assert_allclose(res.stiffness, mat.stiffness(), rtol=1e-10, atol=1e-10)
    c = res.constants
    for k in ("E1", "E2", "E3"):
        assert c[k] == pytest.approx(mat.E, rel=1e-10)
    for k in ("G12", "G13", "G23"):
        assert c[k] == pytest.approx(mat.mu, rel=1e-10)
    for k in ("nu12", "nu13", "nu23"):
        assert c[k] == pytest.approx(mat.nu, rel=1e-10)
    for k in ("a11", "a22", "a33"):
        assert res.cte[k] == pytest.approx(mat.cte, rel=1e-10)
    for k in ("a12", "a13", "a23"):
        assert abs(res.cte[k]) < 1e-15
    assert res.converged


# Voigt index of each direction (1 = x, 2 = y, 3 = z) and the array axis of a [z, y, x] volume.
DIR = {"x": "1", "y": "2", "z": "3"}


@pytest.mark.parametrize("normal", ["x", "z", "y"])
def test_laminate_with_zero_poisson_matches_closed_forms(normal):
    mats = {0: Material(E=3.0, nu=0.0, cte=50e-6), 1: Material(E=240.0, nu=0.0, cte=-1e-6)}
    shape = (6, 8, 10)
    layers = 2
    f1 = layers / shape[AXIS[normal]]
    f = np.array([1 - f1, f1])
    E = np.array([mats[0].E, mats[1].E])
    G = E / 2
    a = np.array([mats[0].cte, mats[1].cte])
    res = homogenize(laminate(shape, AXIS[normal], layers), mats)

    n = DIR[normal]
    inplane = [DIR[d] for d in "xyz" if d != normal]
    c = res.constants
    assert c[f"E{n}"] == pytest.approx(1 / np.sum(f / E), rel=1e-8)  # Reuss across
    for i in inplane:
        assert c[f"E{i}"] == pytest.approx(np.sum(f * E), rel=1e-8)  # Voigt along
    g_in = "G" + "".join(sorted(inplane))
    assert c[g_in] == pytest.approx(np.sum(f * G), rel=1e-8)  # shear in the layer plane
    for i in inplane:
        g_across = "G" + "".join(sorted(i + n))
        assert c[g_across] == pytest.approx(1 / np.sum(f / G), rel=1e-8)
    for k in ("nu12", "nu13", "nu23"):
        assert abs(c[k]) < 1e-8
    assert res.cte[f"a{n}{n}"] == pytest.approx(np.sum(f * a), rel=1e-8)
    for i in inplane:
        assert res.cte[f"a{i}{i}"] == pytest.approx(np.sum(f * E * a) / np.sum(f * E), rel=1e-8)
    for k in ("a12", "a13", "a23"):
        assert abs(res.cte[k]) < 1e-12


def test_laminate_local_strain_field_is_in_array_order():
    """Unit strain 11 (x) across layers normal to x: each layer carries 1/E_i / mean(1/E)."""
    mats = {0: Material(E=2.0, nu=0.0, cte=0.0), 1: Material(E=50.0, nu=0.0, cte=0.0)}
    vol = laminate((4, 5, 8), 2, 3)
    sol = solve_load_case(vol, mats, macro_strain=(1, 0, 0, 0, 0, 0))
    compliance = np.where(vol == 1, 1 / 50.0, 1 / 2.0)
    np.testing.assert_allclose(sol.strain[0], compliance / compliance.mean(), rtol=1e-8)
    np.testing.assert_allclose(sol.strain[1:], 0, atol=1e-10)
    assert sol.mean_stress[0] == pytest.approx(1 / compliance.mean(), rel=1e-8)


def random_volume(shape, fraction, seed):
    return (np.random.default_rng(seed).random(shape) < fraction).astype(np.uint8)


def test_stiffness_is_symmetric_and_converges_fast_at_fibre_epoxy_contrast():
    res = homogenize(random_volume((9, 10, 11), 0.45, 0), DEFAULT_MATERIALS)
    c = res.stiffness
    assert np.abs(c - c.T).max() < 1e-5 * np.abs(c).max()
    assert np.all(np.linalg.eigvalsh(0.5 * (c + c.T)) > 0)
    assert res.converged and max(res.iterations) < 80, res.iterations


def hashin_shtrikman(mats, f):
    """((K_lower, K_upper), (G_lower, G_upper)) of an isotropic two-phase mixture."""
    K = np.array([m.bulk for m in mats])
    G = np.array([m.mu for m in mats])

    def k_bound(g):
        return 1 / np.sum(f / (K + 4 * g / 3)) - 4 * g / 3

    def g_bound(k, g):
        z = g / 6 * (9 * k + 8 * g) / (k + 2 * g)
        return 1 / np.sum(f / (G + z)) - z

    return ((k_bound(G.min()), k_bound(G.max())),
            (g_bound(K.min(), G.min()), g_bound(K.max(), G.max())))


def isotropic_bounds(c):
    """Reuss and Voigt averages of the bulk and shear moduli of a 6x6 stiffness."""
    s = np.linalg.inv(c)
    kv = (np.trace(c[:3, :3]) + 2 * (c[0, 1] + c[0, 2] + c[1, 2])) / 9
    kr = 1 / (np.trace(s[:3, :3]) + 2 * (s[0, 1] + s[0, 2] + s[1, 2]))
    gv = (np.trace(c[:3, :3]) - (c[0, 1] + c[0, 2] + c[1, 2]) + 3 * np.trace(c[3:, 3:])) / 15
    gr = 15 / (4 * np.trace(s[:3, :3]) - 4 * (s[0, 1] + s[0, 2] + s[1, 2]) + 3 * np.trace(s[3:, 3:]))
    return kr, kv, gr, gv


@pytest.mark.parametrize("fraction", [0.3, 0.6])
def test_random_two_phase_volumes_lie_within_hashin_shtrikman_bounds(fraction):
    vol = random_volume((12, 12, 12), fraction, 1)
    mats = [DEFAULT_MATERIALS[0], DEFAULT_MATERIALS[1]]
    f = np.array([1 - vol.mean(), vol.mean()])
    (kl, ku), (gl, gu) = hashin_shtrikman(mats, f)
    kr, kv, gr, gv = isotropic_bounds(homogenize(vol, DEFAULT_MATERIALS).stiffness)
    assert kl < kr <= kv * (1 + 1e-9) < ku
    assert gl < gr <= gv * (1 + 1e-9) < gu


def test_thermal_expansion_agrees_with_levin_formula_from_the_mechanical_fields():
    """alpha = S : <A^T : C alpha> from the six strain fields vs the direct thermal load."""
    vol = random_volume((8, 9, 10), 0.4, 2)
    res = homogenize(vol, DEFAULT_MATERIALS)
    beta = np.array([3 * m.bulk * m.cte for m in (DEFAULT_MATERIALS[0], DEFAULT_MATERIALS[1])])[vol]
    beta_eff = [np.mean(beta * solve_load_case(vol, DEFAULT_MATERIALS, np.eye(6)[k]).strain[:3].sum(0))
                for k in range(6)]
    alpha = res.compliance @ np.array(beta_eff)
    direct = [res.cte[k] for k in ("a11", "a22", "a33")] + [2 * res.cte[k] for k in ("a23", "a13", "a12")]
    np.testing.assert_allclose(direct, alpha, rtol=1e-4, atol=1e-4 * np.abs(alpha).max())


def test_homogenize_progress_and_cancel():
    vol = random_volume((8, 8, 8), 0.5, 3)
    seen = []
    homogenize(vol, DEFAULT_MATERIALS, progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and np.all(np.diff(seen) >= 0) and len(seen) > 7
    calls = []

    def stop_after_some(frac):
        calls.append(frac)
        return len(calls) > 3

    with pytest.raises(PropertyCancelled):
        homogenize(vol, DEFAULT_MATERIALS, progress=stop_after_some)
    assert len(calls) == 4


def test_load_materials_and_bad_input(tmp_path):
    good = tmp_path / "mats.json"
    good.write_text(json.dumps({"0": {"E": 4.0, "nu": 0.3, "cte": 5e-5},
                                "1": {"E": 200, "nu": 0.25, "cte": 1e-6}}))
    mats = load_materials(good)
    assert mats == {0: Material(4.0, 0.3, 5e-5), 1: Material(200.0, 0.25, 1e-6)}
    merged = load_materials(good, defaults=DEFAULT_MATERIALS)
    assert merged[2] == DEFAULT_MATERIALS[2] and merged[0].E == 4.0

    for text in ("{not json", '{"a": {"E": 1, "nu": 0.2, "cte": 0}}', '{"0": {"E": 1}}',
                 '{"0": {"E": -1, "nu": 0.2, "cte": 0}}', '{"0": {"E": 1, "nu": 0.5, "cte": 0}}',
                 '{"0": {"E": "x", "nu": 0.2, "cte": 0}}', "[]"):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(MaterialsError, match="bad.json"):
            load_materials(bad)
    with pytest.raises(InputError, match="missing.json"):
        load_materials(tmp_path / "missing.json")
    with pytest.raises(MaterialsError, match=r"phase\(s\) \[2\]"):
        homogenize(np.full((4, 4, 4), 2, np.uint8), mats)
