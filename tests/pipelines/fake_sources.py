"""Small fake source stages and a fake tokenizer for the mixture tests (no pixels, no model).

A fake source behaves like a real stage module: `source_transform(config)` applied to the pipeline
root returns SourceOutputs; some records fail, some images are shared between sentences, and a
`missing_every` option drops image rows so the compose step must dead-letter those sentences.
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import apache_beam as beam
import numpy as np

from uvd import schema
from uvd.core.outputs import FAILURES, IMAGES, SENTENCES, RunSource


def fake_tokens(image_id: str) -> np.ndarray:
    """Deterministic codes for an image id (what a tokenizer would give for its pixels)."""
    seed = int.from_bytes(hashlib.blake2b(image_id.encode(), digest_size=8).digest(), "big")
    return np.random.default_rng(seed).integers(0, schema.CODEBOOK_SIZE, schema.TOKENS_PER_IMAGE).astype(np.uint16)


class FakeRecords:
    """Record i -> one sentence of `images` images; every `fail_every`-th record fails."""

    def __init__(
        self, source: str, kind: str, images: int, fail_every: int, missing_every: int, groups: int, split: str | None
    ) -> None:
        self.source, self.kind, self.images = source, kind, images
        self.fail_every, self.missing_every, self.groups, self.split = fail_every, missing_every, groups, split

    def __call__(self, i: int):
        if self.fail_every and i % self.fail_every == self.fail_every - 1:
            yield FAILURES, schema.failure_row(f"{self.source}:{i}", self.source, self.source, "fake_bad_input")
            return
        group = f"{self.source}-g{i % self.groups}"
        ids = []
        missing = bool(self.missing_every) and i % self.missing_every == 0
        for k in range(self.images):
            # single images repeat across records (the dedup has work to do); a missing one never does
            image_id = f"{self.source}-img-{i}-{k}" if self.images > 1 or missing else f"shared-{i % 97}-{self.source}"
            ids.append(image_id)
            if not missing:
                yield IMAGES, {"image_id": image_id, "image": b"png", "source": self.source, "provenance": str(i)}
        sid = schema.sentence_id_for(self.source, i)
        yield SENTENCES, schema.sentence_row(sid, self.source, self.kind, ids, group, self.split)


class FakeSource(beam.PTransform):
    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config

    def expand(self, pbegin):
        c = self.config
        fn = FakeRecords(
            c.get("source", "fake"),
            c.get("kind", "single"),
            c.get("images", 1),
            c.get("fail_every", 0),
            c.get("missing_every", 0),
            c.get("groups", 10**9),
            c.get("split"),
        )
        return (
            pbegin
            | "Records" >> beam.Create(list(range(c["n"])))
            | "Run" >> RunSource(fn, source=fn.source, stage=f"fake_{fn.source}", record_id=str)
        )


fake_module = SimpleNamespace(__name__="tests.pipelines.fake_sources", source_transform=FakeSource)


class FakeTokenize(beam.PTransform):
    """Image rows -> token rows, like uvd.tokenize.stage.TokenizeImages but from the id alone."""

    def __init__(self, checkpoint: str = "", batch_size: int = 1, **handler_options) -> None:
        super().__init__()

    def expand(self, images):
        return images | "Tokens" >> beam.Map(
            lambda r: {"image_id": r["image_id"], "tokens": fake_tokens(r["image_id"])}
        )
