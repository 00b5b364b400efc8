import numpy as np
import pytest
import torch

from micro3d_gui.core.encoding import decode, decode_volume, encode, num_channels
from micro3d_gui.core.planes import (
    PLANES, label_volume_to_images, num_slices, slice_shape, slices_to_volume, volume_to_slices,
)

Z, Y, X = 3, 4, 5


def coded_volume():
    """vol[z, y, x] = 100 z + 10 y + x: every voxel says where it is."""
    z, y, x = np.meshgrid(np.arange(Z), np.arange(Y), np.arange(X), indexing="ij")
    return 100 * z + 10 * y + x


@pytest.mark.parametrize("plane", PLANES)
def test_round_trip_numpy_and_torch(plane):
    rng = np.random.default_rng(0)
    vol = rng.normal(size=(2, 3, Z, Y, X))
    for arr in (vol, torch.from_numpy(vol)):
        s = volume_to_slices(arr, plane)
        assert tuple(s.shape) == (2 * num_slices(plane, (Z, Y, X)), 3, *slice_shape(plane, (Z, Y, X)))
        back = slices_to_volume(s, plane, 2, (Z, Y, X))
        np.testing.assert_array_equal(np.asarray(back), vol)


def test_each_plane_has_the_documented_rows_and_columns():
    vol = coded_volume()
    xy = label_volume_to_images(vol, "xy")
    xz = label_volume_to_images(vol, "xz")
    yz = label_volume_to_images(vol, "yz")
    assert xy.shape == (Z, Y, X) and xz.shape == (Y, Z, X) and yz.shape == (X, Z, Y)
    for k in range(Z):  # xy: fixed z, rows y, columns x
        for r in range(Y):
            for c in range(X):
                assert xy[k, r, c] == 100 * k + 10 * r + c
    for k in range(Y):  # xz: fixed y, rows z, columns x
        for r in range(Z):
            for c in range(X):
                assert xz[k, r, c] == 100 * r + 10 * k + c
    for k in range(X):  # yz: fixed x, rows z, columns y
        for r in range(Z):
            for c in range(Y):
                assert yz[k, r, c] == 100 * r + 10 * c + k


def test_volume_slices_batch_order_is_volume_major():
    vol = torch.stack([torch.from_numpy(coded_volume()), torch.from_numpy(coded_volume()) + 1000])
    s = volume_to_slices(vol[:, None], "xz")  # [2*Y, 1, Z, X]
    assert s[0, 0, 0, 0] == 0 and s[Y, 0, 0, 0] == 1000 and s[Y + 1, 0, 1, 2] == 1000 + 100 + 10 + 2


def test_binary_encoding():
    lab = np.array([[0, 1], [1, 0]])
    x = encode(lab, 2)
    assert x.shape == (1, 2, 2)
    assert torch.equal(x[0], torch.tensor([[-1.0, 1.0], [1.0, -1.0]]))
    assert torch.equal(decode(x, 2), torch.from_numpy(lab).to(torch.uint8))


def test_multiphase_encoding_one_hot_pm1():
    rng = np.random.default_rng(1)
    lab = rng.integers(0, 3, size=(4, 6, 7))
    x = encode(lab, 3)
    assert x.shape == (4, 3, 6, 7) and num_channels(3) == 3
    assert set(torch.unique(x).tolist()) == {-1.0, 1.0}
    assert torch.equal((x > 0).sum(dim=1), torch.ones(4, 6, 7, dtype=torch.long))
    assert torch.equal(decode(x, 3), torch.from_numpy(lab).to(torch.uint8))
    vol = x.permute(1, 0, 2, 3)[None]  # [1, C, Z, Y, X]
    assert torch.equal(decode_volume(vol, 3)[0], torch.from_numpy(lab).to(torch.uint8))


def test_encoded_mean_is_2f_minus_1_per_channel():
    from micro3d_gui.core.encoding import encoded_mean

    assert encoded_mean([0.3, 0.7]) == pytest.approx([2 * 0.7 - 1])  # binary: phase 1 at +1
    assert encoded_mean([0.2, 0.5, 0.3]) == pytest.approx([-0.6, 0.0, -0.4])
    # and it is the mean of real encoded labels with those fractions
    labels = np.repeat(np.arange(3), [2, 5, 3]).reshape(1, 10)
    assert encoded_mean([0.2, 0.5, 0.3]) == pytest.approx(encode(labels, 3).mean(dim=(-2, -1)).tolist())
