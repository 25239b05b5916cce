"""Synthetic input images for pair tasks, each seeded per record (same record + seed -> same pixels).

- colorization: `to_gray`, Y = 0.2989 R + 0.5870 G + 0.1140 B (ITU-R 601), replicated to 3 channels.
- inpainting: `black_boxes`, one black square hole (side U[1/4, 1/2] of the short side) or, with
  mode="patches", a random subset (fraction U[0.25, 0.5]) of the 32 px grid blacked out.
- denoising: `add_noise`, Gaussian noise with sigma ~ U[0, 50] (in 0..255 units), clipped.
- low-light: `low_light`, I' = beta * (alpha * I) ** gamma on I in [0, 1], alpha ~ U[0.9, 1],
  beta ~ U[0.5, 1], gamma ~ U[1.5, 5].
Pass the generator from `record_rng(seed, record_id, task)` so the draw depends only on the record.
"""

from __future__ import annotations

import numpy as np

from uvd import hashing

GRAY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140])


def record_rng(*parts: object) -> np.random.Generator:
    """A generator seeded from stable parts (seed, record id, task): no global or process state."""
    return hashing.seeded_rng(*parts)


def _check(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return image


def to_gray(image: np.ndarray) -> np.ndarray:
    """RGB -> 3-channel gray with the 0.2989/0.5870/0.1140 weights."""
    y = _check(image).astype(np.float64) @ GRAY_WEIGHTS
    g = np.clip(np.round(y), 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def black_boxes(image: np.ndarray, rng: np.random.Generator, mode: str = "square", patch: int = 32) -> np.ndarray:
    """Black out one square hole (mode="square") or random patch x patch cells (mode="patches")."""
    image = _check(image)
    h, w = image.shape[:2]
    out = image.copy()
    if mode == "square":
        side = int(rng.integers(min(h, w) // 4, min(h, w) // 2 + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        out[y : y + side, x : x + side] = 0
    elif mode == "patches":
        gh, gw = -(-h // patch), -(-w // patch)
        frac = rng.uniform(0.25, 0.5)
        cells = rng.random((gh, gw)) < frac
        if not cells.any():
            cells[rng.integers(gh), rng.integers(gw)] = True
        mask = np.kron(cells, np.ones((patch, patch), bool))[:h, :w]
        out[mask] = 0
    else:
        raise ValueError(f"mode must be 'square' or 'patches', got {mode!r}")
    return out


def add_noise(
    image: np.ndarray, rng: np.random.Generator, sigma_range: tuple[float, float] = (0.0, 50.0)
) -> np.ndarray:
    """Additive Gaussian noise, sigma ~ U[sigma_range], clipped to 0..255."""
    image = _check(image)
    sigma = rng.uniform(*sigma_range)
    noisy = image.astype(np.float64) + rng.normal(0.0, sigma, image.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def low_light(
    image: np.ndarray,
    rng: np.random.Generator,
    alpha_range: tuple[float, float] = (0.9, 1.0),
    beta_range: tuple[float, float] = (0.5, 1.0),
    gamma_range: tuple[float, float] = (1.5, 5.0),
) -> np.ndarray:
    """beta * (alpha * I) ** gamma with I in [0, 1]: darker, with crushed shadows."""
    image = _check(image)
    alpha, beta, gamma = rng.uniform(*alpha_range), rng.uniform(*beta_range), rng.uniform(*gamma_range)
    dark = beta * (alpha * image.astype(np.float64) / 255.0) ** gamma
    return np.clip(np.round(dark * 255.0), 0, 255).astype(np.uint8)
