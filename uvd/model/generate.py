"""`uvd-generate`: continue a visual sentence with the LVM and decode it to PNG through the VQGAN.

Prompting, as in the paper:
- sequential: images 1..k of a sequence (video frames, views) -> the next image(s).
- analogy: (A1, B1), ..., (An, Bn), A_query -> B_query, the images interleaved in that order.
Both are one token prompt, [BOS] + the prompt images' codes; the modes differ only in how the
images are arranged. Sampling uses a KV cache (one position per new token), temperature and top-k,
and only ever emits image codes (0..8191), so every 256 new tokens are a decodable image.

Examples
    uvd-generate --checkpoint runs/sample/step_00001000.pt --images f1.png f2.png f3.png --out next.png
    uvd-generate --checkpoint ... --mode analogy --images a1.png b1.png a2.png b2.png q.png --out b.png
    uvd-generate --checkpoint ... --shard out/sample/validation-00000-of-00001.parquet --row 3 --prompt_images 4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from uvd import schema
from uvd.model.model import LVM, KVCache

T = schema.TOKENS_PER_IMAGE


def prompt_from_images(image_codes: list[np.ndarray], bos_id: int | None = schema.BOS_ID) -> torch.Tensor:
    """[BOS] + codes of each image, as a (1, L) long tensor (no BOS when bos_id is None)."""
    head = [] if bos_id is None else [bos_id]
    tokens = np.concatenate([head] + [np.asarray(c).reshape(-1) for c in image_codes]).astype(np.int64)
    return torch.from_numpy(tokens)[None]


def analogy_order(pairs: list[tuple[np.ndarray, np.ndarray]], query: np.ndarray) -> list[np.ndarray]:
    """A1, B1, A2, B2, ..., query: the order an analogy prompt is written in."""
    return [img for pair in pairs for img in pair] + [query]


def _sample(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator | None) -> torch.Tensor:
    logits = logits[:, : schema.CODEBOOK_SIZE].float()  # only image codes
    if temperature <= 0:
        return logits.argmax(-1, keepdim=True)
    logits = logits / temperature
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, -1)
    return torch.multinomial(probs, 1, generator=generator)


@torch.no_grad()
def generate(
    model: LVM,
    prompt: torch.Tensor,
    new_tokens: int,
    temperature: float = 1.0,
    top_k: int = 0,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """prompt (B, L) -> (B, new_tokens) sampled codes. temperature 0 is greedy.

    Without the cache every step re-runs the whole prefix (the reference the cache is tested
    against); with it, the prompt is one forward pass and each new token one position.
    """
    model.eval()
    total = prompt.shape[1] + new_tokens
    if total > model.cfg.max_seq_len:
        raise ValueError(f"prompt {prompt.shape[1]} + {new_tokens} new tokens > context {model.cfg.max_seq_len}")
    out = []
    if use_cache:
        p = next(model.parameters())
        cache = KVCache(model.cfg, prompt.shape[0], total, p.device, p.dtype)
        logits = model(prompt, cache=cache)[:, -1]
        for _ in range(new_tokens):
            nxt = _sample(logits, temperature, top_k, generator)
            out.append(nxt)
            if len(out) < new_tokens:
                logits = model(nxt, cache=cache)[:, -1]
    else:
        seq = prompt
        for _ in range(new_tokens):
            nxt = _sample(model(seq)[:, -1], temperature, top_k, generator)
            out.append(nxt)
            seq = torch.cat([seq, nxt], 1)
    return torch.cat(out, 1)


def _load_png_codes(paths: list[str], vqgan) -> list[np.ndarray]:
    from PIL import Image

    from uvd.tokenize import encode

    size = schema.IMAGE_SIZE
    pixels = np.stack(
        [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)) for p in paths]
    )
    return list(encode(vqgan, pixels))


def _codes_from_shard(path: str, row: int) -> list[np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["tokens"])
    toks = np.asarray(table.column("tokens")[row].as_py(), np.int64)
    return list(toks.reshape(-1, T))


def save_strip(images: np.ndarray, path: str | Path) -> None:
    """uint8 (N, H, W, 3) -> one PNG, side by side."""
    from PIL import Image

    Image.fromarray(np.concatenate(list(images), axis=1)).save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="uvd-generate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--checkpoint",
        required=True,
        help="a uvd-train checkpoint (step_*.pt), or a Hugging Face Llama folder / hub id",
    )
    ap.add_argument("--vqgan", default=None, help="VQGAN folder or hub id (default: uvd.tokenize.DEFAULT_CHECKPOINT)")
    ap.add_argument("--mode", choices=("sequential", "analogy"), default="sequential")
    ap.add_argument("--images", nargs="*", default=[], help="prompt images in order (analogy: A1 B1 ... query)")
    ap.add_argument("--shard", help="or: take the prompt from a shard row")
    ap.add_argument("--row", type=int, default=0)
    ap.add_argument("--prompt_images", type=int, default=0, help="with --shard: how many images (0: all but the last)")
    ap.add_argument("--num_images", type=int, default=1, help="images to generate")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top_k", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="generated.png")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)

    from uvd.model.evaluate import load_model

    model, _ = load_model(args.checkpoint, args.device)
    vqgan = None
    if args.images or not args.out.endswith(".npy"):
        import uvd.tokenize as tok

        vqgan = tok.load_vqgan(args.vqgan or tok.DEFAULT_CHECKPOINT)
    if args.shard:
        codes = _codes_from_shard(args.shard, args.row)
        codes = codes[: args.prompt_images or max(1, len(codes) - 1)]
    elif args.images:
        codes = _load_png_codes(args.images, vqgan)
        if args.mode == "analogy":
            if len(codes) % 2 != 1:
                ap.error("analogy needs pairs then a query: an odd number of --images")
            pairs = list(zip(codes[:-1:2], codes[1:-1:2]))
            codes = analogy_order(pairs, codes[-1])
    else:
        ap.error("give --images or --shard")
    gen = torch.Generator(device=args.device).manual_seed(args.seed)
    prompt = prompt_from_images(codes, model.cfg.bos_id).to(args.device)
    new = generate(model, prompt, args.num_images * T, args.temperature, args.top_k, generator=gen)
    new_codes = new[0].cpu().numpy().reshape(args.num_images, T)
    if args.out.endswith(".npy"):
        np.save(args.out, np.concatenate([np.stack(codes), new_codes]).astype(np.uint16))
    else:
        from uvd.tokenize import decode

        pixels = decode(vqgan, np.concatenate([np.stack(codes), new_codes]).astype(np.uint16))
        save_strip(pixels, args.out)
    print(f"{len(codes)} prompt image(s) + {args.num_images} generated -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
