"""Plane-conditional 2D U-Net eps_theta(x_t, t, c) (paper Table 1, METHOD.md Sec. 2).

Input and output ``[B, C, H, W]`` with H and W divisible by ``2 ** (levels - 1)``. The time
step ``t`` is an integer per batch item (original, unrespaced index); the condition ``c`` is a
plane label (see :mod:`micro3d_gui.core.planes`, 3 = null). The condition embedding is added
to the sinusoidal time embedding and also serves as extra key/value tokens of every attention
layer (self- and cross-attention in one, as in the paper and GLIDE).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..planes import NUM_LABELS


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 1
    base_channels: int = 128
    channel_mults: tuple[int, ...] = (1, 2, 4, 8)
    num_res_blocks: int = 3
    attention_levels: tuple[bool, ...] = (False, True, True, True)
    num_heads: int = 8
    head_dim: int = 64
    cond_dim: int = 512
    dropout: float = 0.0
    #: Apply the time + condition embedding as a scale and shift after the ResBlock's second
    #: GroupNorm (improved-diffusion's use_scale_shift_norm). Added before it, as the paper's
    #: block does, the embedding is a per-channel constant that a group of one channel
    #: subtracts away: the tiny preset's 16- and 32-channel blocks never saw t or the plane.
    #: False for checkpoints saved before the field existed.
    scale_shift_norm: bool = False
    #: Condition also on the image's phase fractions (its mean per channel in model space,
    #: ``2 f - 1`` for a binary), embedded into the time embedding; unknown (None / NaN)
    #: has its own input. In the multi-plane chain each plane's denoiser otherwise reads the
    #: other planes' slices as incoherent minority features and erases them, until an
    #: anisotropic volume is all one phase; told the fraction, it keeps it
    #: (docs/experiments/2026-12-03-fraction-condition.md). Each slice is told its own
    #: fraction as the noisy slice shows it, centred on the target (see
    #: ``fraction_condition``): told the volume's mean, slices of lamellae seen edge-on
    #: (each one phase) grew layers across them. On in the CPU presets.
    fraction_conditioning: bool = False
    #: Self-conditioning (Chen, Zhang and Hinton 2022, "Analog Bits"): the input also holds
    #: an earlier x0 estimate of the image (zeros for none), C more input channels. In the
    #: multi-plane chain that estimate is the previous step's, made by another plane, so a
    #: plane's denoiser sees what the other planes made of its slices' neighbourhood
    #: (docs/experiments/2026-12-06-self-conditioning.md). Off in every preset; ``micro3d
    #: train --self-condition`` turns it on.
    self_condition: bool = False
    #: Side of the square pixel patches the network works on (space-to-depth, as "simple
    #: diffusion", Hoogeboom et al. 2023): each ``patch x patch`` block of pixels enters as
    #: ``patch**2`` channels and leaves the same way, so every level runs on ``patch**2``
    #: times fewer pixels. On a CPU the full-resolution level of a thin network costs most
    #: of a call in memory-bound work (norms, activations), which this removes. 1: pixels.
    patch: int = 1
    preset: str = "custom"

    @property
    def levels(self) -> int:
        return len(self.channel_mults)

    @property
    def size_multiple(self) -> int:
        """Image sides must be divisible by this."""
        return self.patch * 2 ** (self.levels - 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channel_mults"] = list(self.channel_mults)
        d["attention_levels"] = list(self.attention_levels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        d = dict(d)
        d["channel_mults"] = tuple(d["channel_mults"])
        d["attention_levels"] = tuple(d["attention_levels"])
        return cls(**d)


_TINY = UNetConfig(
    base_channels=16, channel_mults=(1, 1, 2, 4), num_res_blocks=1,
    attention_levels=(False, False, False, True), num_heads=4, head_dim=32,
    cond_dim=128, scale_shift_norm=True, fraction_conditioning=True, preset="tiny",
)

PRESETS: dict[str, UNetConfig] = {
    # Paper Table 1: ~110 GFLOP per 64x64 slice. A GPU model.
    "paper": UNetConfig(preset="paper"),
    # CPU presets: attention only where the feature map is small.
    "small": UNetConfig(
        base_channels=32, channel_mults=(1, 2, 3, 4), num_res_blocks=1,
        attention_levels=(False, False, True, True), num_heads=4, head_dim=32,
        cond_dim=128, scale_shift_norm=True, fraction_conditioning=True, preset="small",
    ),
    "tiny": _TINY,
    # The tiny network on 2 x 2 pixel patches: its levels at 1/2 to 1/16 of the image side.
    "lean": replace(_TINY, patch=2, preset="lean"),
}


def preset_config(name: str, in_channels: int) -> UNetConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], in_channels=in_channels)


def _groups(channels: int) -> int:
    for g in (32, 16, 8, 4, 2, 1):
        if channels % g == 0:
            return g
    return 1


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` without torch's batch-size guard.

    Group norm normalises each sample on its own, so one slice whose groups hold a single
    value (batch 1, one channel per group, the deepest map of an 8 px side 1 x 1) is as
    well defined as two: the value minus its own mean. ``F.group_norm`` still refuses it
    with BatchNorm's "more than 1 value per channel" check, which would make the result
    depend on how many slices share a network call (``--max-batch 1``, a low memory
    budget, a box side of 8 or less). The computation is torch's own, so the weights, and
    every result at batch 2 or more, are unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.group_norm(x, self.num_groups, self.weight, self.bias, self.eps,
                                torch.backends.cudnn.enabled)


def _norm(channels: int) -> nn.GroupNorm:
    return GroupNorm(_groups(channels), channels)


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer steps ``t`` ``[B]`` -> ``[B, dim]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a residual; the embedding enters between them, added
    (the paper's) or, with ``scale_shift``, as ``norm(h) * (1 + scale) + shift``."""

    def __init__(self, cin: int, cout: int, temb: int, dropout: float,
                 scale_shift: bool = False):
        super().__init__()
        self.scale_shift = scale_shift
        self.in_layers = nn.Sequential(_norm(cin), nn.SiLU(), _conv3(cin, cout))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(temb, 2 * cout if scale_shift else cout))
        self.out_layers = nn.Sequential(
            _norm(cout), nn.SiLU(), nn.Dropout(dropout), _zero(_conv3(cout, cout))
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x, emb, cond_tokens):
        h = self.in_layers(x)
        e = self.emb(emb)[:, :, None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            return self.skip(x) + self.out_layers[1:](h)
        return self.skip(x) + self.out_layers(h + e)


class Attention(nn.Module):
    """Self-attention over the pixels with the condition tokens as extra keys/values."""

    def __init__(self, channels: int, heads: int, head_dim: int, cond_dim: int):
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim = heads, head_dim
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * inner, 1)
        self.cond_kv = nn.Linear(cond_dim, 2 * inner)
        self.proj = _zero(nn.Conv2d(inner, channels, 1))

    def forward(self, x, emb, cond_tokens):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, self.head_dim, h * w).unbind(1)
        ck, cv = self.cond_kv(cond_tokens).reshape(b, -1, 2, self.heads, self.head_dim).unbind(2)
        # [B, heads, tokens, head_dim]
        q = q.transpose(-1, -2)
        k = torch.cat([k.transpose(-1, -2), ck.transpose(1, 2)], dim=2)
        v = torch.cat([v.transpose(-1, -2), cv.transpose(1, 2)], dim=2)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(-1, -2).reshape(b, -1, h, w)
        return x + self.proj(out)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = _conv3(channels, channels, stride=2)

    def forward(self, x, emb, cond_tokens):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = _conv3(channels, channels)

    def forward(self, x, emb, cond_tokens):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Stage(nn.ModuleList):
    def forward(self, x, emb, cond_tokens):
        for layer in self:
            x = layer(x, emb, cond_tokens)
        return x


class UNet(nn.Module):
    """eps_theta(x ``[B, C, H, W]``, t ``[B]`` long, c ``[B]`` long, means ``[B, C]`` or
    None, x0_self ``[B, C, H, W]`` or None) -> ``[B, C, H, W]``. ``means``: the clean image's
    mean per channel (model space), read only with ``fraction_conditioning``; None or a NaN
    row: unknown. ``x0_self``: an earlier x0 estimate, read only with ``self_condition``;
    None: zeros (no estimate)."""

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.config = cfg
        ch = cfg.base_channels
        temb = 4 * ch
        self.time_embed = nn.Sequential(nn.Linear(ch, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.cond_embed = nn.Embedding(NUM_LABELS, cfg.cond_dim)
        self.cond_to_time = nn.Linear(cfg.cond_dim, temb)
        if cfg.fraction_conditioning:  # the means per channel and an "unknown" flag
            self.fraction_embed = nn.Sequential(nn.Linear(cfg.in_channels + 1, temb),
                                                nn.SiLU(), nn.Linear(temb, temb))
        pixels = cfg.patch ** 2  # channels per input channel after space-to-depth
        self.input_conv = _conv3(cfg.in_channels * pixels * (2 if cfg.self_condition else 1),
                                 ch)

        def attn(c):
            return Attention(c, cfg.num_heads, cfg.head_dim, cfg.cond_dim)

        def block(cin, cout):
            return ResBlock(cin, cout, temb, cfg.dropout, cfg.scale_shift_norm)

        self.down = nn.ModuleList()
        skips = [ch]
        cur = ch
        for level, mult in enumerate(cfg.channel_mults):
            for _ in range(cfg.num_res_blocks):
                stage = Stage([block(cur, ch * mult)])
                cur = ch * mult
                if cfg.attention_levels[level]:
                    stage.append(attn(cur))
                self.down.append(stage)
                skips.append(cur)
            if level != cfg.levels - 1:
                self.down.append(Stage([Downsample(cur)]))
                skips.append(cur)

        self.middle = Stage(
            [block(cur, cur), attn(cur), block(cur, cur)]
        )

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mults))):
            for i in range(cfg.num_res_blocks + 1):
                stage = Stage([block(cur + skips.pop(), ch * mult)])
                cur = ch * mult
                if cfg.attention_levels[level]:
                    stage.append(attn(cur))
                if level != 0 and i == cfg.num_res_blocks:
                    stage.append(Upsample(cur))
                self.up.append(stage)

        self.out = nn.Sequential(_norm(cur), nn.SiLU(),
                                 _zero(_conv3(cur, cfg.in_channels * pixels)))

    def set_periodic(self, periodic: bool) -> None:
        """Circular padding in every 3x3 convolution: tileable (periodic) outputs."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1):
                m.padding_mode = "circular" if periodic else "zeros"

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor,
                means: torch.Tensor | None = None, x0_self: torch.Tensor | None = None
                ) -> torch.Tensor:
        m = self.config.size_multiple
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(
                f"image sides must be multiples of {m} for this model, got {tuple(x.shape[-2:])}"
            )
        cond = self.cond_embed(c)
        emb = self.time_embed(timestep_embedding(t, self.config.base_channels).to(x.dtype))
        emb = emb + self.cond_to_time(cond)
        if self.config.fraction_conditioning:
            emb = emb + self.fraction_embed(fraction_input(means, x))
        tokens = cond[:, None, :]
        if self.config.self_condition:
            x = torch.cat([x, torch.zeros_like(x) if x0_self is None else x0_self.to(x.dtype)],
                          dim=1)
        p = self.config.patch
        h = self.input_conv(F.pixel_unshuffle(x, p) if p > 1 else x)
        hs = [h]
        for stage in self.down:
            h = stage(h, emb, tokens)
            hs.append(h)
        h = self.middle(h, emb, tokens)
        for stage in self.up:
            h = stage(torch.cat([h, hs.pop()], dim=1), emb, tokens)
        out = self.out(h)
        return F.pixel_shuffle(out, p) if p > 1 else out


def fraction_input(means: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """The fraction embedding's input ``[B, C + 1]``: the means (0 where unknown) and 1
    where unknown, for ``means`` ``[B, C]`` (NaN rows unknown), ``[C]`` (every item) or
    None (all unknown); ``x`` gives B, C, device and dtype."""
    b, c = x.shape[0], x.shape[1]
    if means is None:
        means = torch.full((b, c), float("nan"), device=x.device)
    means = means.to(device=x.device, dtype=x.dtype).expand(b, c)
    unknown = torch.isnan(means).any(dim=1, keepdim=True)
    return torch.cat([torch.where(unknown, 0.0, means), unknown.to(x.dtype)], dim=1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_slice(cfg: UNetConfig, size: tuple[int, int] = (64, 64)) -> int:
    """Forward FLOPs for one slice, counted by ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    model = UNet(cfg).eval()
    x = torch.zeros(1, cfg.in_channels, *size)
    t = torch.zeros(1, dtype=torch.long)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, t, t)
    return counter.get_total_flops()
