"""Config rules that reject a LAION row: from its metadata (before any download) and from the real
decoded size (metadata WIDTH/HEIGHT are often missing or wrong). A rejection is (reason, detail)
with status "filtered"; None keeps the row.
"""

from __future__ import annotations

from dataclasses import dataclass

Rejection = tuple[str, str]


@dataclass(frozen=True)
class FilterConfig:
    min_side: int = 128  # shorter side in pixels, before resizing
    max_aspect_ratio: float = 3.0  # long side / short side
    max_punsafe: float | None = 0.5  # LAION's NSFW probability; None: no rule
    max_pwatermark: float | None = 0.8  # LAION's watermark probability; None: no rule


def size_rejection(height: float | None, width: float | None, cfg: FilterConfig) -> Rejection | None:
    """too_small / filtered_aspect for a known size; unknown sizes pass (checked after decoding)."""
    if not height or not width or height <= 0 or width <= 0:
        return None
    short, long = min(height, width), max(height, width)
    if short < cfg.min_side:
        return "too_small", f"{int(width)}x{int(height)}: shorter side < min_side {cfg.min_side}"
    if long / short > cfg.max_aspect_ratio:
        return "filtered_aspect", f"{int(width)}x{int(height)}: aspect {long / short:.2f} > {cfg.max_aspect_ratio}"
    return None


def metadata_rejection(row: dict, cfg: FilterConfig) -> Rejection | None:
    """Rules on the metadata row (normalized by reader.normalize_row)."""
    punsafe, pwatermark = row.get("punsafe"), row.get("pwatermark")
    if cfg.max_punsafe is not None and punsafe is not None and punsafe > cfg.max_punsafe:
        return "filtered_punsafe", f"punsafe {punsafe:.3f} > {cfg.max_punsafe}"
    if cfg.max_pwatermark is not None and pwatermark is not None and pwatermark > cfg.max_pwatermark:
        return "filtered_pwatermark", f"pwatermark {pwatermark:.3f} > {cfg.max_pwatermark}"
    return size_rejection(row.get("height"), row.get("width"), cfg)
