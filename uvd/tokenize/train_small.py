"""Train the small VQGAN shipped as uvd.tokenize.DEFAULT_CHECKPOINT (`make tokenizer`).

Same model code as the LVM tokenizer (uvd.tokenize.vqgan.SMALL_CONFIG: narrower channels, the
same 8192-code vocabulary and f16 grid), trained on the photos the project ships
(uvd/sample/images) plus procedurally drawn images, as random crops with flips. Fully
convolutional and attention-free, so crops train the same weights that tokenize 256x256 images.

Losses: L1 + MSE reconstruction and the commitment loss (beta = 0.25) with a straight-through
gradient, as taming/open-muse; the codebook itself follows an EMA of the latents each code wins
(VQ-VAE-2), which in a short run is steadier than the gradient codebook loss. Three things make a
tiny run use its codes: the codebook starts from encoder outputs, each code is the mean of what
it wins, and codes that win almost nothing are re-seeded from current encoder outputs. Learning rate follows a cosine
over the wall-clock budget, so `--minutes` sets the whole schedule.

    python -m uvd.tokenize.train_small --minutes 8            # CPU, ~2 cores
    python -m uvd.tokenize.train_small --device cuda --minutes 3 --batch 64 --crop 128

It reports reconstruction PSNR on held-back photos (full 256x256, through encode/decode, the
pipeline's own path) and codebook usage and perplexity, and writes config.json + model.safetensors.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter

from uvd import hashing
from uvd.tokenize import DEFAULT_CHECKPOINT
from uvd.tokenize.codec import decode, encode
from uvd.tokenize.load import save_vqgan
from uvd.tokenize.vqgan import SMALL_CONFIG, VQGANModel

SAMPLE_IMAGES = Path(__file__).resolve().parents[1] / "sample" / "images"
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
PHOTO_SCALES = (256, 384, 512)


# --- data --------------------------------------------------------------------------------------
def fit_256(img: Image.Image, size: int = 256) -> np.ndarray:
    """Shorter side to `size` (bicubic), centre crop: the project's default geometry."""
    img = img.convert("RGB")
    scale = size / min(img.size)
    w, h = max(size, round(img.width * scale)), max(size, round(img.height * scale))
    img = img.resize((w, h), Image.Resampling.BICUBIC)
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)


def is_held_out(name: str, fraction: float = 0.2) -> bool:
    """Stable split by file name hash, so adding photos never moves an old one across."""
    return hashing.unit_float(name) < fraction


def load_photos(folder: Path = SAMPLE_IMAGES) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(train, held_out) photos: train ones at 3 scales (256, 384, 512) for crops, held-out at 256."""
    train, held = [], []
    for path in sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_EXTS):
        with Image.open(path) as img:
            if is_held_out(path.name):
                held.append(fit_256(img))
            else:
                train += [fit_256(img, size) for size in PHOTO_SCALES]
    return train, held


def procedural_image(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """Gradients, shapes, stripes and blur: edges and flat regions a photo set of 20 lacks."""
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0.0, 1.0, size)[:, None] * rng.uniform(-1, 1) + np.linspace(0.0, 1.0, size)[None, :] * rng.uniform(
        -1, 1
    )
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    base = (c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]).astype(np.uint8)
    img = Image.fromarray(base)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 14))):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, y0 = (int(v) for v in rng.integers(-32, size, 2))
        w, h = (int(v) for v in rng.integers(8, size // 2, 2))
        kind = rng.integers(0, 4)
        if kind == 0:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
        elif kind == 1:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
        elif kind == 2:
            pts = [tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(3)]
            draw.polygon(pts, fill=colour)
        else:
            draw.line((x0, y0, x0 + w, y0 + h), fill=colour, width=int(rng.integers(1, 6)))
    if rng.random() < 0.3:  # stripes
        period = int(rng.integers(4, 24))
        arr = np.asarray(img).copy()
        mask = (np.arange(size) // period) % 2 == 0
        arr[:, mask] = 255 - arr[:, mask]
        img = Image.fromarray(arr)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.5))))
    return np.asarray(img, dtype=np.uint8)


class CropSampler:
    """Random crops with horizontal flips from a pool of uint8 HxWx3 images."""

    def __init__(self, images: list[np.ndarray], crop: int, seed: int) -> None:
        if not images:
            raise ValueError("no training images")
        self.images, self.crop = images, crop
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> np.ndarray:
        out = np.empty((n, self.crop, self.crop, 3), dtype=np.uint8)
        for i in range(n):
            img = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(0, img.shape[0] - self.crop + 1)
            x = self.rng.integers(0, img.shape[1] - self.crop + 1)
            patch = img[y : y + self.crop, x : x + self.crop]
            out[i] = patch[:, ::-1] if self.rng.random() < 0.5 else patch
        return out


# --- codebook care -----------------------------------------------------------------------------
@torch.no_grad()
def seed_codebook(model: VQGANModel, latents: torch.Tensor, rng: torch.Generator) -> None:
    """Codes := encoder outputs picked far from each other (k-means++-like), plus a little noise."""
    codes = model.quantize.embedding.weight
    flat = latents.reshape(-1, codes.shape[1]).float().cpu()
    idx = torch.randint(len(flat), (len(codes),), generator=rng)
    codes.copy_((flat[idx] + 0.01 * flat.std() * torch.randn(codes.shape, generator=rng)).to(codes))


class EmaCodebook:
    """VQ-VAE-2 style codebook: each code is the running mean of the encoder outputs it wins.

    Steadier than learning codes by gradient in a short run. Each code keeps an EMA of its hit
    count (`size`) and of the sum of its latents (`total`); both start at one pseudo-hit of the
    initial code, so a code that wins nothing keeps its place (both decay alike) until a restart
    moves it. The trained weights are plain codebook rows: inference is unchanged.
    """

    def __init__(self, codes: torch.Tensor, decay: float = 0.99) -> None:
        self.decay = decay
        self.size = torch.ones(len(codes), device=codes.device)
        self.total = codes.detach().float().clone()

    @torch.no_grad()
    def update(self, codes: torch.Tensor, flat: torch.Tensor, ids: torch.Tensor) -> None:
        d = self.decay
        counts = torch.bincount(ids, minlength=len(codes)).float()
        sums = torch.zeros_like(self.total).index_add_(0, ids, flat.float())
        self.size.mul_(d).add_(counts, alpha=1 - d)
        self.total.mul_(d).add_(sums, alpha=1 - d)
        codes.copy_(self.total / self.size.clamp_min(1e-20)[:, None])

    @torch.no_grad()
    def restart_dead(
        self, codes: torch.Tensor, flat: torch.Tensor, rng: torch.Generator, threshold: float = 0.03
    ) -> int:
        """Codes hit less than `threshold` x the average move onto random current latents."""
        mean = self.size.mean()
        dead = (self.size < threshold * mean).nonzero().flatten()
        if len(dead) == 0:
            return 0
        flat = flat.detach().float()
        pick = torch.randint(len(flat), (len(dead),), generator=rng).to(flat.device)
        noise = torch.randn((len(dead), flat.shape[1]), generator=rng).to(flat.device)
        fresh = flat[pick] + 0.01 * flat.std() * noise
        codes[dead] = fresh.to(codes)
        self.size[dead] = mean
        self.total[dead] = fresh * mean
        return len(dead)


def code_stats(ids: np.ndarray, num_codes: int) -> dict[str, float]:
    counts = np.bincount(ids.ravel().astype(np.int64), minlength=num_codes)
    p = counts[counts > 0] / counts.sum()
    return {
        "codes_used": int((counts > 0).sum()),
        "usage": float((counts > 0).mean()),
        "perplexity": float(np.exp(-(p * np.log(p)).sum())),
    }


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def evaluate(model: VQGANModel, held: np.ndarray, codes_from: np.ndarray) -> dict[str, float]:
    """PSNR on held-out 256px images and code stats over `codes_from`, via encode/decode."""
    model.eval()
    ids = encode(model, held, batch_size=8, precision="fp32")
    recon = decode(model, ids, batch_size=8, precision="fp32")
    stats = code_stats(encode(model, codes_from, batch_size=8, precision="fp32"), model.config.num_embeddings)
    model.train()
    return {"psnr_held_out": float(np.mean([psnr(a, b) for a, b in zip(held, recon)])), **stats}


def choose_output(out: Path, psnr_new: float, force: bool) -> Path:
    """`out`, unless it holds a better-scoring checkpoint: then runs/<name> (a short CPU run should
    not silently replace the shipped model with a weaker one)."""
    try:
        old = json.loads((out / "config.json").read_text())["_uvd"]["psnr_held_out"]
    except (OSError, KeyError, TypeError, ValueError):
        return out
    if force or psnr_new >= old:
        return out
    alt = Path("runs") / out.name
    print(
        f"[train_small] kept {out} (held-out PSNR {old:.2f} dB > {psnr_new:.2f} dB); wrote {alt} instead "
        "(--force to overwrite)",
        flush=True,
    )
    return alt


# --- training ----------------------------------------------------------------------------------
@dataclass
class Args:
    minutes: float
    crop: int
    batch: int
    lr: float
    device: str
    seed: int
    out: str
    procedural: int
    threads: int
    force: bool


def parse(argv: list[str] | None) -> Args:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--minutes", type=float, default=8.0, help="wall-clock training budget (the LR schedule spans it)")
    p.add_argument("--crop", type=int, default=64, help="training crop side, a multiple of 16")
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=DEFAULT_CHECKPOINT, help="checkpoint folder to write")
    p.add_argument("--procedural", type=int, default=60, help="procedurally drawn training images")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument(
        "--force", action="store_true", help="overwrite --out even when its checkpoint scored a higher held-out PSNR"
    )
    a = p.parse_args(argv)
    if a.crop % 16 or a.crop < 32:
        p.error("--crop must be a multiple of 16, at least 32")
    return Args(**vars(a))


def train(args: Args) -> dict:
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    rng = np.random.default_rng(args.seed)
    grng = torch.Generator().manual_seed(args.seed)

    photos, held = load_photos()
    drawn = [procedural_image(rng) for _ in range(args.procedural)]
    held_drawn = [procedural_image(np.random.default_rng(10_000 + i)) for i in range(4)]
    held_all = np.stack(held + held_drawn)
    sampler = CropSampler(photos + drawn, args.crop, args.seed)
    stats_images = np.stack([fit_256(Image.fromarray(p)) for p in photos[:: len(PHOTO_SCALES)]] + drawn[:16])
    print(
        f"[train_small] {len(photos) // len(PHOTO_SCALES)} photos (+{len(drawn)} drawn) for training, {len(held)} photos "
        f"(+{len(held_drawn)} drawn) held out; crops {args.crop}px x {args.batch}; {args.minutes} min on {device}",
        flush=True,
    )

    model = VQGANModel(SMALL_CONFIG).to(device).train()
    codes = model.quantize.embedding.weight
    codes.requires_grad_(False)  # moved by the EMA, not by Adam
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr, betas=(0.9, 0.99))
    to_x = lambda b: torch.from_numpy(b).to(device).permute(0, 3, 1, 2).float().div(255.0)  # noqa: E731
    beta = SMALL_CONFIG.commitment_cost

    with torch.no_grad():
        seed_codebook(
            model,
            torch.cat(
                [model.encode_latents(to_x(sampler.batch(args.batch))).permute(0, 2, 3, 1).cpu() for _ in range(8)]
            ),
            grng,
        )
    ema = EmaCodebook(codes)

    budget = args.minutes * 60.0
    start = last_print = time.monotonic()
    step, restarted = 0, 0
    while (elapsed := time.monotonic() - start) < budget:
        frac = elapsed / budget
        lr = args.lr * min(1.0, (step + 1) / 100) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for group in opt.param_groups:
            group["lr"] = lr
        x = to_x(sampler.batch(args.batch))
        latents = model.encode_latents(x)  # (b, dim, h, w)
        b, dim, h, w = latents.shape
        flat = latents.permute(0, 2, 3, 1).reshape(-1, dim)
        ids = model.quantize.nearest(flat.detach())  # the inference quantizer
        z_q = codes[ids]
        commit = F.mse_loss(flat, z_q)  # pulls the encoder to its codes
        z_st = flat + (z_q - flat).detach()  # straight-through gradient
        recon = model.decode(z_st.view(b, h, w, dim).permute(0, 3, 1, 2))
        rec_loss = F.l1_loss(recon, x) + F.mse_loss(recon, x)
        loss = rec_loss + beta * commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(codes, flat.detach(), ids)
        step += 1
        if step % 25 == 0 and frac < 0.85:  # leave the last part of the run to settle
            restarted += ema.restart_dead(codes, flat, grng)
        if time.monotonic() - last_print > 30 or step == 1:
            last_print = time.monotonic()
            print(
                f"[train_small] step {step} {elapsed:5.0f}s lr {lr:.2e} rec {rec_loss.item():.4f} "
                f"commit {commit.item():.4f} restarted {restarted}",
                flush=True,
            )

    model = model.cpu()
    metrics = evaluate(model, held_all, stats_images)
    metrics["psnr_held_out_photos"] = (
        float(
            np.mean(
                [psnr(a, b) for a, b in zip(held, decode(model, encode(model, np.stack(held), 8, "fp32"), 8, "fp32"))]
            )
        )
        if held
        else float("nan")
    )
    summary = {
        "trained": True,
        "steps": step,
        "minutes": round((time.monotonic() - start) / 60, 2),
        "device": str(device),
        "crop": args.crop,
        "batch": args.batch,
        "lr": args.lr,
        "seed": args.seed,
        "train_images": {"photos": len(photos) // len(PHOTO_SCALES), "procedural": len(drawn)},
        "held_out": {"photos": len(held), "procedural": len(held_drawn)},
        "codes_restarted": restarted,
        **{k: round(v, 4) for k, v in metrics.items()},
    }
    out = choose_output(Path(args.out), metrics["psnr_held_out"], args.force)
    save_vqgan(model, out, extra=summary)
    print(
        f"[train_small] held-out PSNR {metrics['psnr_held_out']:.2f} dB "
        f"(photos {metrics['psnr_held_out_photos']:.2f} dB); codebook usage {metrics['codes_used']}/"
        f"{SMALL_CONFIG.num_embeddings} ({100 * metrics['usage']:.1f}%), perplexity {metrics['perplexity']:.0f}; "
        f"{step} steps -> {out}",
        flush=True,
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    summary = train(parse(argv))
    print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
