"""Seeded hashes and random generators: one home, so every stage derives randomness the same way.

A record's randomness depends only on stable parts (the seed, ids, a purpose string), never on
process state, worker order or the runner: the same inputs + seed give the same bytes anywhere.
Parts are joined with the unit separator (\\x1f) and hashed with blake2b-64; the byte layout of each
helper is the one the dataset has always used (changing it would change every shard).
"""

from __future__ import annotations

import hashlib

import numpy as np

SEP = "\x1f"


def _digest64(*parts: object) -> bytes:
    return hashlib.blake2b(SEP.join(str(p) for p in parts).encode(), digest_size=8).digest()


def stable_int(*parts: object) -> int:
    """A 64-bit integer from the parts (little-endian digest)."""
    return int.from_bytes(_digest64(*parts), "little")


def seeded_rng(*parts: object) -> np.random.Generator:
    """A numpy Generator that depends only on the parts."""
    return np.random.default_rng(stable_int(*parts))


def unit_float(*parts: object) -> float:
    """A uniform number in [0, 1) from the parts (big-endian digest / 2**64): splits, shard keys."""
    return int.from_bytes(_digest64(*parts), "big") / 2.0**64


def unit_hash(*parts: object) -> float:
    """unit_float with every part followed by the separator: the layout of split, shard and mix keys."""
    return unit_float(*parts, "")


def text_hash(text: str | None) -> str | None:
    """blake2b-128 hex of a text (manifests, configs); None stays None."""
    return None if text is None else hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
