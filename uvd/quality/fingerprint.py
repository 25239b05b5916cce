"""Perceptual fingerprints of 256x256 images: a DCT hash for near-duplicates, a thumbnail for frames.

The DCT hash is pHash's idea (Zauner 2010) in plain numpy and batched: luma, box-downsample to 32x32
(256 is a multiple of 32, so an exact block mean, no resampler), 2-D DCT-II by two matrix products,
then one bit per low-frequency coefficient (zigzag order, DC left out): is it above the median of
the chosen coefficients. Brightness moves only DC and contrast scales every coefficient, so both
leave the bits alone; JPEG, resizes and small crops move high frequencies first. Hashes are uint8
rows of bits/8 bytes, so they pack into Parquet/JSON and compare with a popcount.

The 16x16 luma thumbnail (block means) is what the sequence checks look at: frozen frames, blank
frames and scene cuts need no more than that.
"""

from __future__ import annotations

import functools

import numpy as np

HASH_SIZE = 32  # DCT input side (pHash's 32x32)
DEFAULT_BITS = 64  # coefficients kept -> bits per hash
THUMB = 16  # thumbnail side for the sequence checks
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as PIL's convert("L")


def luma(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) or (H, W, 3) -> float32 (N, H, W) luma in 0..255."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) RGB, got shape {arr.shape}")
    return arr.astype(np.float32) @ LUMA


def block_mean(gray: np.ndarray, side: int) -> np.ndarray:
    """(N, H, W) -> (N, side, side) by exact block means (H and W must be multiples of side)."""
    n, h, w = gray.shape
    if h % side or w % side:
        raise ValueError(f"image {h}x{w} is not a multiple of {side}; fingerprints expect 256x256")
    return gray.reshape(n, side, h // side, side, w // side).mean(axis=(2, 4))


@functools.lru_cache(maxsize=4)
def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix D (n x n): coefficients = D @ x @ D.T."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d.astype(np.float32)


@functools.lru_cache(maxsize=8)
def zigzag(n: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the `count` lowest frequencies of an n x n grid, DC excluded."""
    cells = sorted((u + v, u if (u + v) % 2 else v, u, v) for u in range(n) for v in range(n))
    cells = [c for c in cells if (c[2], c[3]) != (0, 0)][:count]
    if len(cells) < count:
        raise ValueError(f"at most {n * n - 1} coefficients in a {n}x{n} DCT, asked for {count}")
    return np.array([c[2] for c in cells]), np.array([c[3] for c in cells])


def dct_coefficients(images: np.ndarray, bits: int = DEFAULT_BITS) -> np.ndarray:
    """uint8 RGB images -> float32 (N, bits) low-frequency DCT coefficients of the 32x32 luma."""
    small = block_mean(luma(images), HASH_SIZE)
    d = dct_matrix(HASH_SIZE)
    coeffs = d @ small @ d.T
    rows, cols = zigzag(HASH_SIZE, bits)
    return coeffs[:, rows, cols]


def dct_hash(images: np.ndarray, bits: int = DEFAULT_BITS) -> np.ndarray:
    """uint8 RGB images (N, 256, 256, 3) -> uint8 (N, bits // 8): the perceptual hash, one row per image."""
    if bits % 8 or bits <= 0:
        raise ValueError(f"bits must be a positive multiple of 8, got {bits}")
    c = dct_coefficients(images, bits)
    return np.packbits(c > np.median(c, axis=1, keepdims=True), axis=1)


def thumbnail(images: np.ndarray, side: int = THUMB) -> np.ndarray:
    """uint8 RGB images -> uint8 (N, side, side) luma block means."""
    return np.clip(np.rint(block_mean(luma(images), side)), 0, 255).astype(np.uint8)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit distances between packed hashes, broadcasting over leading axes: (..., B) x (..., B) -> (...)."""
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint8), np.asarray(b, dtype=np.uint8))
    return np.bitwise_count(x).sum(axis=-1, dtype=np.int64)


def to_hex(h: np.ndarray) -> str:
    return np.asarray(h, dtype=np.uint8).tobytes().hex()


def from_hex(s: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(s), dtype=np.uint8)
