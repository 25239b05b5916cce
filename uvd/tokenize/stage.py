"""`uvd tokenize`: images table -> tokens table, each unique image tokenized once.

    image rows --KeyById/OnePerId--> (image_id, png) --DecodePng--> (image_id, uint8 256x256x3)
      --RunInference(KeyedModelHandler(VQGANModelHandler))--> {image_id, tokens: uint16[256]}
    rows without an id, undecodable or off-size PNGs -> failure rows (stage "tokenize")

Only the RunInference step carries the accelerator resource hint (`--accelerator`), so on Dataflow
the decode and dedup steps stay on CPU workers.

    uvd tokenize --input out/laion --output out/laion [--checkpoint openMUSE/vqgan-f16-8192-laion]
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

from uvd.core import tables
from uvd.core.options import setup_logging, split_args
from uvd.core.outputs import FAILURES, DeadLetterDoFn
from uvd.schema import FAILURES_SCHEMA, IMAGE_SIZE, RecordError, failure_row
from uvd.tokenize import DEFAULT_CHECKPOINT
from uvd.tokenize.handler import VQGANModelHandler

STAGE = "tokenize"
TOKENS = "tokens"


class TokenizeOutputs(NamedTuple):
    tokens: beam.PCollection  # {"image_id": str, "tokens": np.uint16[256]}
    failures: beam.PCollection  # uvd.schema.failure_row dicts


def png_to_pixels(data: bytes, size: int = IMAGE_SIZE) -> np.ndarray:
    """PNG (or any PIL-readable) bytes -> uint8 (size, size, 3) RGB; ValueError if it is not that."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if im.size != (size, size):
            raise ValueError(f"wrong_size: {im.size[0]}x{im.size[1]}, expected {size}x{size}")
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def key_row(row: dict) -> Iterator[Any]:
    """Image row -> (image_id, row), or a failure row when it has no id or no image bytes."""
    image_id = row.get("image_id")
    if not image_id or not row.get("image"):
        what = "image_id" if not image_id else "image"
        yield beam.pvalue.TaggedOutput(
            FAILURES, failure_row(str(image_id or "?"), str(row.get("source") or "unknown"), STAGE, f"missing_{what}")
        )
        return
    yield image_id, row


class DecodePng(DeadLetterDoFn):
    """(image_id, row) -> (image_id, pixels), or a failure row that says why not."""

    def __init__(self) -> None:
        super().__init__("unknown", STAGE, "decode", reconcile=False)  # cached tokens skip it: not an input count

    def record_id(self, item: tuple[str, dict]) -> str:
        return item[0]

    def source_of(self, item: tuple[str, dict]) -> str:
        return str(item[1].get("source") or "unknown")

    def failure(self, item: tuple[str, dict], reason: str, detail: str, status: str = "failed") -> Any:
        Metrics.counter("uvd.tokenize", "bad_images").inc()
        return super().failure(item, reason, detail, status)

    def convert(self, item: tuple[str, dict]) -> Iterator[Any]:
        image_id, row = item
        try:
            pixels = png_to_pixels(row["image"])
        except Exception as exc:  # noqa: BLE001 - any undecodable input becomes a failure row
            reason = "wrong_size" if str(exc).startswith("wrong_size") else "bad_image"
            raise RecordError(reason, f"{type(exc).__name__}: {exc}") from None
        yield image_id, pixels


def to_token_row(item: tuple[str, np.ndarray]) -> dict:
    image_id, ids = item
    return {"image_id": image_id, "tokens": np.asarray(ids, dtype=np.uint16)}


class TokenizeImages(beam.PTransform):
    """Image rows -> TokenizeOutputs(tokens, failures); one token row per unique image_id."""

    def __init__(
        self,
        checkpoint: str = DEFAULT_CHECKPOINT,
        batch_size: int = 32,
        *,
        device: str = "auto",
        precision: str = "auto",
        accelerator: str | None = None,
        min_batch_size: int = 1,
        large_model: bool = False,
        compile: bool = False,
        unique_ids: bool = False,
        label: str | None = None,
    ) -> None:
        super().__init__(label)
        self.unique_ids = unique_ids  # the caller already deduplicated (uvd dataset): skip the shuffle
        self.handler = VQGANModelHandler(
            checkpoint,
            device=device,
            precision=precision,
            min_batch_size=min(min_batch_size, batch_size),
            max_batch_size=batch_size,
            accelerator=accelerator,
            large_model=large_model,
            compile=compile,
        )

    def expand(self, images: beam.PCollection) -> TokenizeOutputs:
        keyed = images | "KeyById" >> beam.FlatMap(key_row).with_outputs(FAILURES, main="ok")
        unique = (
            keyed.ok if self.unique_ids else keyed.ok | "OnePerId" >> beam.CombinePerKey(tables.first_by_provenance)
        )
        decoded = unique | "DecodePng" >> beam.ParDo(DecodePng()).with_outputs(FAILURES, main="ok")
        tokens = (
            decoded.ok
            | "VQGAN" >> RunInference(KeyedModelHandler(self.handler))
            | "ToTokenRow" >> beam.Map(to_token_row)
        )
        failures = (keyed[FAILURES], decoded[FAILURES]) | "Failures" >> beam.Flatten()
        return TokenizeOutputs(tokens, failures)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="uvd tokenize", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="folder holding the images table (<input>/images/)")
    parser.add_argument("--output", required=True, help="folder to write <output>/tokens/ (+ failures)")
    parser.add_argument(
        "--checkpoint",
        default=DEFAULT_CHECKPOINT,
        help="VQGAN folder or hub id (default: the small model shipped with uvd; the LVM's "
        "is openMUSE/vqgan-f16-8192-laion)",
    )
    parser.add_argument("--batch_size", type=int, default=32, help="largest batch per forward pass")
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, cuda:1...")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="auto: bf16 autocast on CUDA, fp32 on CPU; the quantizer is always fp32",
    )
    parser.add_argument(
        "--accelerator",
        default=None,
        help="resource hint for the tokenize step only, e.g. 'type:nvidia-l4;count:1;install-nvidia-driver' (Dataflow)",
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the encoder (GPU: ~3x; batches padded to --batch_size)"
    )
    parser.add_argument(
        "--large_model",
        action="store_true",
        help="one model per machine shared by its worker processes (big checkpoints)",
    )
    args, options = split_args(parser, argv)
    setup_logging()
    with beam.Pipeline(options=options) as p:
        out = (
            p
            | tables.ReadTable(args.input, "images")
            | "Tokenize"
            >> TokenizeImages(
                args.checkpoint,
                args.batch_size,
                device=args.device,
                precision=args.precision,
                accelerator=args.accelerator,
                compile=args.compile,
                large_model=args.large_model,
            )
        )
        out.tokens | tables.WriteTable(args.output, TOKENS)
        # Own file prefix: the images stage may have written <output>/failures/part-* already.
        out.failures | "WriteFailures" >> beam.io.WriteToParquet(
            tables.table_prefix(args.output, "failures") + "-tokenize",
            FAILURES_SCHEMA,
            codec="zstd",
            file_name_suffix=".parquet",
        )
    return 0
