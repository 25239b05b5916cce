"""The LVM's VQGAN (taming-transformers family) with open-muse's module tree.

Written for uvd from the architecture of open-muse's `VQGANModel`
(muse/modeling_taming_vqgan.py): every parameter has the same dotted name and shape, so a state
dict from the published checkpoints (openMUSE/vqgan-f16-8192-laion, Emma02/vqvae_ckpts) loads
with strict=True, and the numerics match: GroupNorm(32 groups, eps 1e-6), SiLU, asymmetric
(0, 1, 0, 1) padding before each stride-2 conv, nearest-neighbour upsampling, and the quantizer's
squared-L2 distance |z|^2 + |e|^2 - 2 z.e computed with one `addmm`, argmin over codes.

Layout (f = 2 ** (len(channel_mult) - 1)):
    encoder: conv_in -> down[i].block[j] (ResnetBlock) [-> down[i].attn[j]] -> down[i].downsample
             -> mid.block_1 [-> mid.attn_1] -> mid.block_2 -> norm_out -> SiLU -> conv_out
    quant_conv (1x1, z_channels -> quantized_embed_dim) -> quantize.embedding (num_embeddings x dim)
    post_quant_conv (1x1) -> decoder: conv_in -> mid -> up[i] for i from coarse to fine -> conv_out

Two behaviours are kept on purpose because the checkpoints were trained with them:
  * a down/up block applies its attention layers only when it has more than one of them;
  * the decoder's `up` list is indexed by resolution level (up[0] is the finest) and run reversed.

No torch import happens at `import uvd.tokenize`; this module is imported lazily.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# open-muse stores these derived values on its config; they may appear in a config.json.
DERIVED_CONFIG_KEYS = ("num_resolutions", "reduction_factor", "latent_size")


@dataclass(frozen=True)
class VQGANConfig:
    """The constructor arguments of open-muse's VQGANModel; defaults are open-muse's own.

    A config.json written by open-muse carries every field; a missing field therefore means
    open-muse's default, which is why the defaults below are theirs and not the LVM's (see
    `LVM_CONFIG` for that).
    """

    resolution: int = 256
    num_channels: int = 3
    hidden_channels: int = 128
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    decoder_res_blocks: int | tuple[int, ...] | None = None
    extra_mid_res_blocks: int | None = None
    decoder_hidden_channels: int | None = None
    decoder_channel_mult: tuple[int, ...] | None = None
    attn_resolutions: tuple[int, ...] = (16,)
    no_attn_mid_block: bool = False
    z_channels: int = 256
    num_embeddings: int = 1024
    quantized_embed_dim: int = 256
    dropout: float = 0.0
    resample_with_conv: bool = True
    commitment_cost: float = 0.25

    def __post_init__(self) -> None:
        # JSON gives lists; keep tuples so the config is hashable and compares equal.
        for name in ("channel_mult", "decoder_channel_mult", "attn_resolutions", "decoder_res_blocks"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        for name in ("hidden_channels", "decoder_hidden_channels"):
            value = getattr(self, name)
            if value is not None and value % 32:
                raise ValueError(f"{name}={value}: GroupNorm uses 32 groups, so it must be a multiple of 32")

    @property
    def num_resolutions(self) -> int:
        return len(self.channel_mult)

    @property
    def reduction_factor(self) -> int:
        return 2 ** (self.num_resolutions - 1)

    @property
    def latent_size(self) -> int:
        return self.resolution // self.reduction_factor

    @property
    def tokens_per_image(self) -> int:
        return self.latent_size**2

    @property
    def dec_hidden_channels(self) -> int:
        return self.hidden_channels if self.decoder_hidden_channels is None else self.decoder_hidden_channels

    @property
    def dec_channel_mult(self) -> tuple[int, ...]:
        return self.channel_mult if self.decoder_channel_mult is None else self.decoder_channel_mult

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))


# The LVM tokenizer (146,244,675 parameters in 277 tensors; f16, 8192 codes of dim 64).
LVM_CONFIG = VQGANConfig(
    resolution=256,
    num_channels=3,
    hidden_channels=128,
    channel_mult=(1, 2, 2, 4, 6),
    num_res_blocks=2,
    attn_resolutions=(),
    no_attn_mid_block=True,
    z_channels=64,
    num_embeddings=8192,
    quantized_embed_dim=64,
    dropout=0.0,
    resample_with_conv=True,
    commitment_cost=0.25,
)

# The embedded default: same family and vocabulary (8192 codes, f16), narrow enough for CPU
# (1,387,563 parameters, 5.5 MB in fp32).
SMALL_CONFIG = VQGANConfig(
    resolution=256,
    num_channels=3,
    hidden_channels=32,
    channel_mult=(1, 1, 2, 2, 2),
    num_res_blocks=1,
    attn_resolutions=(),
    no_attn_mid_block=True,
    z_channels=32,
    num_embeddings=8192,
    quantized_embed_dim=8,
    dropout=0.0,
    resample_with_conv=True,
    commitment_cost=0.25,
)

# For unit tests: exercises attention, conv shortcuts and every optional branch in milliseconds.
DEBUG_CONFIG = VQGANConfig(
    resolution=32,
    num_channels=3,
    hidden_channels=32,
    channel_mult=(1, 2, 2),
    num_res_blocks=2,
    attn_resolutions=(8,),
    no_attn_mid_block=False,
    z_channels=16,
    num_embeddings=64,
    quantized_embed_dim=8,
)

CONFIGS: dict[str, VQGANConfig] = {"lvm": LVM_CONFIG, "small": SMALL_CONFIG, "debug": DEBUG_CONFIG}


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class Upsample(nn.Module):
    """Nearest x2, then an optional 3x3 conv."""

    def __init__(self, channels: int, with_conv: bool) -> None:
        super().__init__()
        self.with_conv = with_conv
        if with_conv:
            self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x) if self.with_conv else x


class Downsample(nn.Module):
    """Stride-2 3x3 conv after padding right/bottom by one (taming's asymmetric pad), or avg-pool."""

    def __init__(self, channels: int, with_conv: bool) -> None:
        super().__init__()
        self.with_conv = with_conv
        if with_conv:
            self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.with_conv:
            return F.avg_pool2d(x, kernel_size=2, stride=2)
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class ResnetBlock(nn.Module):
    """norm -> SiLU -> conv -> norm -> SiLU -> dropout -> conv, plus a (1x1 or 3x3) shortcut."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        use_conv_shortcut: bool = False,
        dropout_prob: float = 0.0,
    ) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels, self.out_channels_ = in_channels, out_channels
        self.use_conv_shortcut = use_conv_shortcut
        self.norm1 = _group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.norm2 = _group_norm(out_channels)
        self.dropout = nn.Dropout(dropout_prob)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        if in_channels != out_channels:
            if use_conv_shortcut:
                self.conv_shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
            else:
                self.nin_shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if self.in_channels != self.out_channels_:
            x = self.conv_shortcut(x) if self.use_conv_shortcut else self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions, with 1x1-conv q/k/v/proj_out."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = _group_norm(channels)
        self.q = nn.Conv2d(channels, channels, kernel_size=1)
        self.k = nn.Conv2d(channels, channels, kernel_size=1)
        self.v = nn.Conv2d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = self.norm(x)
        # (b, 1, hw, c): one head; SDPA scales by c ** -0.5, as the reference does by hand.
        q, k, v = (t(n).reshape(b, 1, c, h * w).transpose(2, 3) for t in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(2, 3).reshape(b, c, h, w)
        return x + self.proj_out(out)


def _run_block(block: nn.ModuleList, attn: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    # The reference applies attention only when a level has more than one attention layer; the
    # published weights were trained that way, so we keep it.
    for i, res in enumerate(block):
        x = res(x)
        if len(attn) > 1:
            x = attn[i](x)
    return x


class DownsamplingBlock(nn.Module):
    def __init__(self, config: VQGANConfig, curr_res: int, block_idx: int) -> None:
        super().__init__()
        in_mult = (1,) + tuple(config.channel_mult)
        block_in = config.hidden_channels * in_mult[block_idx]
        block_out = config.hidden_channels * config.channel_mult[block_idx]
        self.block, self.attn = nn.ModuleList(), nn.ModuleList()
        for _ in range(config.num_res_blocks):
            self.block.append(ResnetBlock(block_in, block_out, dropout_prob=config.dropout))
            block_in = block_out
            if curr_res in config.attn_resolutions:
                self.attn.append(AttnBlock(block_in))
        self.downsample = None
        if block_idx != config.num_resolutions - 1:
            self.downsample = Downsample(block_in, config.resample_with_conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _run_block(self.block, self.attn, x)
        return x if self.downsample is None else self.downsample(x)


class UpsamplingBlock(nn.Module):
    def __init__(self, config: VQGANConfig, num_res_blocks: int, curr_res: int, block_idx: int) -> None:
        super().__init__()
        hidden, mult = config.dec_hidden_channels, config.dec_channel_mult
        last = block_idx == config.num_resolutions - 1
        block_in = hidden * (mult[-1] if last else mult[block_idx + 1])
        block_out = hidden * mult[block_idx]
        self.block, self.attn = nn.ModuleList(), nn.ModuleList()
        for _ in range(num_res_blocks + 1):
            self.block.append(ResnetBlock(block_in, block_out, dropout_prob=config.dropout))
            block_in = block_out
            if curr_res in config.attn_resolutions:
                self.attn.append(AttnBlock(block_in))
        self.upsample = None
        if block_idx != 0:
            self.upsample = Upsample(block_in, config.resample_with_conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _run_block(self.block, self.attn, x)
        return x if self.upsample is None else self.upsample(x)


class MidBlock(nn.Module):
    def __init__(self, config: VQGANConfig, channels: int, is_decoder: bool = False) -> None:
        super().__init__()
        self.no_attn = config.no_attn_mid_block
        self.block_1 = ResnetBlock(channels, channels, dropout_prob=config.dropout)
        if not self.no_attn:
            self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels, dropout_prob=config.dropout)
        if config.extra_mid_res_blocks is not None and is_decoder:
            self.extra_mid_res_blocks = nn.ModuleList(
                ResnetBlock(channels, dropout_prob=config.dropout) for _ in range(config.extra_mid_res_blocks)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block_1(x)
        if not self.no_attn:
            x = self.attn_1(x)
        x = self.block_2(x)
        for block in getattr(self, "extra_mid_res_blocks", ()):
            x = block(x)
        return x


class Encoder(nn.Module):
    def __init__(self, config: VQGANConfig) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(config.num_channels, config.hidden_channels, kernel_size=3, stride=1, padding=1)
        curr_res, blocks = config.resolution, []
        for level in range(config.num_resolutions):
            blocks.append(DownsamplingBlock(config, curr_res, block_idx=level))
            if level != config.num_resolutions - 1:
                curr_res //= 2
        self.down = nn.ModuleList(blocks)
        mid = config.hidden_channels * config.channel_mult[-1]
        self.mid = MidBlock(config, mid)
        self.norm_out = _group_norm(mid)
        self.conv_out = nn.Conv2d(mid, config.z_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for block in self.down:
            x = block(x)
        x = self.mid(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, config: VQGANConfig) -> None:
        super().__init__()
        hidden, mult = config.dec_hidden_channels, config.dec_channel_mult
        block_in = hidden * mult[config.num_resolutions - 1]
        curr_res = config.latent_size
        given = config.num_res_blocks if config.decoder_res_blocks is None else config.decoder_res_blocks
        res_blocks = [given] * config.num_resolutions if isinstance(given, int) else list(given)
        self.conv_in = nn.Conv2d(config.z_channels, block_in, kernel_size=3, stride=1, padding=1)
        self.mid = MidBlock(config, block_in, is_decoder=True)
        blocks: list[UpsamplingBlock] = []
        for level in reversed(range(config.num_resolutions)):
            blocks.append(UpsamplingBlock(config, res_blocks[level], curr_res, block_idx=level))
            if level != 0:
                curr_res *= 2
        self.up = nn.ModuleList(reversed(blocks))  # up[level]: up[0] is the finest resolution
        block_out = hidden * mult[0]
        self.norm_out = _group_norm(block_out)
        self.conv_out = nn.Conv2d(block_out, config.num_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid(self.conv_in(z))
        for block in reversed(self.up):
            x = block(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class VectorQuantizer(nn.Module):
    """Nearest-code lookup with the VQ-VAE codebook + commitment loss and a straight-through grad."""

    def __init__(self, num_embeddings: int, embedding_dim: int, commitment_cost: float) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.commitment_cost = commitment_cost
        self.embedding = nn.Embedding(num_embeddings, embedding_dim)
        with torch.no_grad():
            self.embedding.weight.uniform_(-1.0 / num_embeddings, 1.0 / num_embeddings)

    def compute_distances(self, flat: torch.Tensor) -> torch.Tensor:
        """Squared L2 from each row of `flat` (M, dim) to every code: |z|^2 + |e|^2 - 2 z.e."""
        codes_t = self.embedding.weight.t()
        return torch.addmm(
            flat.pow(2.0).sum(dim=1, keepdim=True) + codes_t.pow(2.0).sum(dim=0, keepdim=True),
            flat,
            codes_t,
            alpha=-2.0,
        )

    def nearest(self, flat: torch.Tensor, chunk_rows: int = 32768) -> torch.Tensor:
        """argmin over codes, in row chunks so a big batch never holds (M, 8192) floats at once.

        Always fp32 and outside autocast: a bf16 distance would flip ids between near codes.
        """
        flat = flat.float()
        no_autocast = (
            contextlib.nullcontext() if flat.device.type == "meta" else torch.autocast(flat.device.type, enabled=False)
        )
        with no_autocast:
            return torch.cat([self.compute_distances(part).argmin(dim=1) for part in flat.split(chunk_rows)])

    def forward(
        self, z: torch.Tensor, return_loss: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        z = z.permute(0, 2, 3, 1).contiguous()  # (b, h, w, dim)
        ids = self.nearest(z.reshape(-1, self.embedding_dim))
        z_q = self.embedding(ids).view(z.shape).to(z.dtype)
        loss = None
        if return_loss:
            loss = torch.mean((z_q.detach() - z) ** 2) + self.commitment_cost * torch.mean((z_q - z.detach()) ** 2)
            z_q = z + (z_q - z).detach()
        return z_q.permute(0, 3, 1, 2).contiguous(), ids.reshape(z.shape[0], -1), loss

    def get_code(self, z: torch.Tensor) -> torch.Tensor:
        """(b, dim, h, w) -> (b, h*w) code ids in raster order."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.embedding_dim)
        return self.nearest(flat).reshape(z.shape[0], -1)

    def get_codebook_entry(self, ids: torch.Tensor) -> torch.Tensor:
        """(b, n) ids of a square grid -> (b, dim, sqrt(n), sqrt(n))."""
        b, n = ids.shape
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"{n} ids per image do not form a square grid")
        return self.embedding(ids).reshape(b, side, side, -1).permute(0, 3, 1, 2)


class VQGANModel(nn.Module):
    """open-muse's VQGANModel API: encode / decode / decode_code / get_code / forward."""

    def __init__(self, config: VQGANConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        if config is None:
            config = VQGANConfig(**kwargs)
        elif kwargs:
            config = dataclasses.replace(config, **kwargs)
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quantize = VectorQuantizer(config.num_embeddings, config.quantized_embed_dim, config.commitment_cost)
        self.quant_conv = nn.Conv2d(config.z_channels, config.quantized_embed_dim, kernel_size=1)
        self.post_quant_conv = nn.Conv2d(config.quantized_embed_dim, config.z_channels, kernel_size=1)

    def get_last_layer(self) -> torch.Tensor:
        return self.decoder.conv_out.weight

    def encode_latents(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1], (b, 3, H, W) -> continuous latents (b, quantized_embed_dim, H/f, W/f)."""
        return self.quant_conv(self.encoder(pixel_values))

    def encode(self, pixel_values: torch.Tensor, return_loss: bool = False) -> tuple:
        out = self.quantize(self.encode_latents(pixel_values), return_loss)
        return out if return_loss else out[:2]

    def decode(self, quantized: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quantized))

    def decode_code(self, ids: torch.Tensor) -> torch.Tensor:
        """(b, n) ids -> RGB (b, 3, H, W), unclamped as in the reference (clamp to [0, 1] to view)."""
        return self.decode(self.quantize.get_codebook_entry(ids))

    def get_code(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1], (b, 3, H, W) -> (b, (H/f) * (W/f)) ids: the tokenizer's one job."""
        return self.quantize.get_code(self.encode_latents(pixel_values))

    def forward(self, pixel_values: torch.Tensor, return_loss: bool = False) -> tuple:
        z_q, ids, loss = self.quantize(self.encode_latents(pixel_values), return_loss)
        out = (self.decode(z_q), z_q, ids)
        return out + (loss,) if return_loss else out


def build(config: VQGANConfig | str, device: str | torch.device | None = None) -> VQGANModel:
    """A model of a named (`lvm`, `small`, `debug`) or given config; device='meta' allocates nothing."""
    if isinstance(config, str):
        if config not in CONFIGS:
            raise ValueError(f"unknown VQGAN config {config!r}; choose one of {sorted(CONFIGS)}")
        config = CONFIGS[config]
    with torch.device(device or "cpu"):
        return VQGANModel(config)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "CONFIGS",
    "DEBUG_CONFIG",
    "LVM_CONFIG",
    "SMALL_CONFIG",
    "VQGANConfig",
    "VQGANModel",
    "build",
    "num_params",
]
