"""The CPU's slices per network call: timed, not assumed (core/device.py ``fastest_chunk``)."""
import time

import torch
from torch import nn

from micro3d_gui.core.device import FIRST_PROBE_PIXELS, WHOLE_CALL_PIXELS, fastest_chunk
from micro3d_gui.core.diffusion.unet import UNet, preset_config


class CostPerSlice(nn.Module):
    """A network stand-in whose call of ``b`` slices takes ``b * cost[b]`` seconds: the
    probe's search, apart from any machine's real costs (sleeping only ever adds time,
    so a loaded machine cannot make a dear batch look cheap)."""

    def __init__(self, cost: dict[int, float], first_call: float = 0.0):
        super().__init__()
        self.cost, self.first_call, self.batches = cost, first_call, []

    def forward(self, x, t, c):
        b = x.shape[0]
        # a shape's first call also builds its kernels: a fixed cost, dear for few slices
        time.sleep(b * self.cost[b] + (self.first_call if b not in self.batches else 0.0))
        self.batches.append(b)
        return x

    def timed(self) -> list[int]:
        """The batches timed: each after a warm-up call of its own."""
        assert self.batches[::2] == self.batches[1::2]
        return self.batches[::2]


def test_the_probe_doubles_from_its_first_batch_and_keeps_the_cheapest_per_slice():
    side = 128  # 16,384 pixels: the first batch is one slice
    assert side * side >= FIRST_PROBE_PIXELS
    net = CostPerSlice({1: 0.020, 2: 0.015, 4: 0.005, 8: 0.015, 16: 0.015})
    chunk = fastest_chunk(net, torch.zeros(1, 3, side, side), most=64)
    assert chunk == 4
    # it stops after two batches in a row more than 10 % dearer per slice than the best
    assert net.timed() == [1, 2, 4, 8, 16]


def test_a_shapes_first_call_does_not_count():
    # building kernels costs every batch the same 150 ms: cold, 1 slice looks dearest
    net = CostPerSlice({1: 0.02, 2: 0.03, 4: 0.04, 8: 0.05, 16: 0.06}, first_call=0.15)
    assert fastest_chunk(net, torch.zeros(1, 3, 128, 128), most=64) == 1


def test_one_slow_call_does_not_end_the_search():
    # batch 2 as if a neighbour's burst had slowed it: the cheaper 4 is still found
    net = CostPerSlice({1: 0.020, 2: 0.040, 4: 0.005, 8: 0.015, 16: 0.015})
    assert fastest_chunk(net, torch.zeros(1, 3, 128, 128), most=64) == 4


def test_the_probe_never_passes_what_memory_allows():
    net = CostPerSlice({1: 0.010, 2: 0.008, 4: 0.006, 6: 0.001})
    assert fastest_chunk(net, torch.zeros(1, 3, 256, 256), most=6) == 6
    assert net.timed() == [1, 2, 4, 6]


def test_small_calls_and_gpus_keep_the_memory_plan_unprobed():
    net = CostPerSlice({})
    most = WHOLE_CALL_PIXELS // (64 * 64)  # the default 64^3 box's plane
    assert fastest_chunk(net, torch.zeros(1, 3, 64, 64), most=most) == most
    assert net.batches == []
    if torch.cuda.is_available():
        example = torch.zeros(1, 3, 256, 256, device="cuda")
        assert fastest_chunk(net, example, most=256) == 256
        assert net.batches == []


def test_the_probe_runs_the_real_network_in_its_layout():
    model = UNet(preset_config("lean", 3)).eval().to(memory_format=torch.channels_last)
    seen = []
    model.register_forward_pre_hook(
        lambda m, args: seen.append((args[0].shape[0],
                                     args[0].is_contiguous(memory_format=torch.channels_last))))
    chunk = fastest_chunk(model, torch.zeros(1, 3, 128, 128), most=24,
                          memory_format=torch.channels_last)
    assert 1 <= chunk <= 24
    assert chunk in [b for b, _ in seen]
    assert all(layout for _, layout in seen)
    timed = [b for b, _ in seen][::2]
    assert timed == [1, 2, 4, 8, 16, 24][:len(timed)]
