"""ImageNet-style class folders -> "sequence" sentences of 16 images of one class.

Flow (each step labelled in the Beam graph):
    ListImages      `root/<class>/<file>` (any of IMAGE_EXTENSIONS), or a CSV of path, class[, split];
                    every other file under root is an input too: a skipped row `unsupported_format`
                    (not an image) or `not_in_class_folder` (an image outside root/<class>/)
    DecodeImages    bytes -> 256x256 RGB (uvd.transforms.image: EXIF, bomb guard, resize + crop);
                    unreadable files become failure rows *before* sampling, so no sentence ever
                    points at an image that does not exist
    ByClass         (split, class) -> its decoded images (path, image_id)
    ClassSentences  seeded shuffle of a class, cut into sentences (class_sentences below)

Rules (config, defaults first):
- Sampling is without replacement within a pass: each pass shuffles the class (seeded by seed,
  split, class and pass number) and cuts it into sentences of `images_per_sentence`.
  `passes > 1` repeats that with fresh shuffles for more (different) sentences of the same images.
- remainder "fill": the n mod 16 images left over at the end of a pass go into one last sentence,
  completed with other images of the class drawn without replacement; every image then appears in
  a sentence and no sentence repeats an image. "skip": leftovers get a skipped row instead.
- small_class "skip": a class with fewer than 16 readable images gives a skipped row per image
  (reason class_too_small). "short": one shorter sentence of all its images (if >= min_images).
- group = the class name. Every sentence of a class lands in the same split, so no image is ever
  in two splits (the price: held-out sentences are of held-out classes). A `split` column in the
  CSV is kept as the sentence's split, and classes are sampled per (split, class).
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from uvd import hashing, schema
from uvd.config import require
from uvd.core.outputs import FAILURES, IMAGES, SENTENCES, RunSource, SourceOutputs, SourceTransform
from uvd.core.stage import SourceStage
from uvd.transforms import image as img

SOURCE = "imagenet_class"
STAGE = "imagenet"
GROUP_STAGE = "imagenet_class"
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".webp", ".bmp")

log = logging.getLogger("uvd.imagenet")


@dataclass
class Config:
    """Options of the ImageNet same-class source (manifest options or `uvd imagenet` flags)."""

    input: str  # root of class folders, or a .csv (path, class[, split])
    images_per_sentence: int = 16
    passes: int = 1  # independent without-replacement shuffles per class
    remainder: str = "fill"  # "fill" or "skip" (see module docstring)
    small_class: str = "skip"  # "skip" or "short"
    min_images: int = 2  # smallest sentence small_class="short" makes
    seed: int = 0
    image_size: int = schema.IMAGE_SIZE
    resize: str = "crop"  # "crop" or "squash"
    max_pixels: int = img.DEFAULT_MAX_PIXELS

    def validate(self) -> None:
        require(bool(self.input), "input", "give a folder of class folders or a .csv of path, class")
        require(
            1 <= self.images_per_sentence <= schema.MAX_IMAGES_PER_SENTENCE,
            "images_per_sentence",
            f"must be 1..{schema.MAX_IMAGES_PER_SENTENCE}, got {self.images_per_sentence}",
        )
        require(self.passes >= 1, "passes", f"must be >= 1, got {self.passes}")
        require(self.remainder in ("fill", "skip"), "remainder", f"'fill' or 'skip', got {self.remainder!r}")
        require(self.small_class in ("skip", "short"), "small_class", f"'skip' or 'short', got {self.small_class!r}")
        require(
            1 <= self.min_images <= self.images_per_sentence,
            "min_images",
            f"must be 1..images_per_sentence, got {self.min_images}",
        )
        require(self.resize in img.MODES, "resize", f"one of {img.MODES}, got {self.resize!r}")
        require(self.image_size >= 16, "image_size", f"must be >= 16, got {self.image_size}")


# --- sampling (pure) -------------------------------------------------------------------------------
def _rng(*parts: object) -> np.random.Generator:
    return hashing.seeded_rng(*parts)


def class_sentences(n: int, key: str, cfg: Config) -> tuple[list[list[int]], list[int]]:
    """Sentences of a class of `n` images (sorted by path), as lists of indices 0..n-1.

    Returns (sentences, unused): `unused` are indices in no sentence at all, which the caller
    records as skipped rows. Deterministic in (cfg.seed, key, n).
    """
    k = cfg.images_per_sentence
    if n < k:
        if cfg.small_class == "short" and n >= cfg.min_images:
            return [list(_rng(cfg.seed, key, p).permutation(n)) for p in range(cfg.passes)], []
        return [], list(range(n))
    sentences: list[list[int]] = []
    used: set[int] = set()
    for p in range(cfg.passes):
        rng = _rng(cfg.seed, key, p)
        order = [int(i) for i in rng.permutation(n)]
        full = n - n % k
        sentences += [order[s : s + k] for s in range(0, full, k)]
        leftover = order[full:]
        if leftover and cfg.remainder == "fill":
            extra = rng.choice(order[:full], size=k - len(leftover), replace=False)
            sentences.append(leftover + [int(i) for i in extra])
        used.update(i for s in sentences for i in s)
    return sentences, [i for i in range(n) if i not in used]


# --- listing ---------------------------------------------------------------------------------------
def _is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def folder_record(path: str, root: str = "") -> dict:
    """root/<class>/<file> -> {path, class, split}; any other file under root carries its skip reason."""
    record = {"path": path, "class": posixpath.basename(posixpath.dirname(path)), "split": None}
    rel = path[len(root.rstrip("/")) :].lstrip("/") if root and path.startswith(root.rstrip("/")) else ""
    if not _is_image(path):
        record["skip"] = "unsupported_format"
    elif root and rel.count("/") != 1:
        record["skip"] = "not_in_class_folder"
    return record


def csv_records(manifest: str) -> Iterator[dict]:
    """Rows of a CSV (path, class or label, optional split); paths relative to the CSV's folder."""
    import pyarrow.csv as pacsv

    with FileSystems.open(manifest) as f:
        rows = pacsv.read_csv(f).to_pylist()
    base = posixpath.dirname(manifest)
    for row in rows:
        path = row.get("path")
        cls = row.get("class", row.get("label"))
        if path and "://" not in str(path) and not str(path).startswith("/"):
            path = FileSystems.join(base, str(path))
        yield {
            "path": str(path or ""),
            "class": "" if cls is None else str(cls),
            "split": None if row.get("split") in (None, "") else str(row["split"]),
        }


class ListImages(beam.PTransform):
    def __init__(self, input_: str) -> None:
        super().__init__()
        self.input = input_

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        if self.input.lower().endswith(".csv"):
            return (
                pbegin
                | "MatchCsv" >> fileio.MatchFiles(self.input)
                | "ReadCsv" >> beam.FlatMap(lambda m: csv_records(m.path))
            )
        root = self.input.rstrip("/")
        return (
            pbegin
            | "MatchFiles" >> fileio.MatchFiles(FileSystems.join(root, "**"))
            | "ToRecord" >> beam.Map(lambda m: folder_record(m.path, root))
        )


# --- decode ----------------------------------------------------------------------------------------
class DecodeImage:
    """A listed image -> its image row, or a failure row (RunSource callable)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def __call__(self, record: dict) -> Iterator[tuple[str, dict]]:
        path = record["path"]
        if record.get("skip"):
            detail = (
                f"not one of {', '.join(IMAGE_EXTENSIONS)}"
                if record["skip"] == "unsupported_format"
                else "images sit in root/<class>/; the class is the folder's name"
            )
            yield FAILURES, schema.failure_row(path, SOURCE, STAGE, record["skip"], detail, status="skipped")
            return
        if not path or not record["class"]:
            yield (
                FAILURES,
                schema.failure_row(path or "<no path>", SOURCE, STAGE, "missing_path" if not path else "missing_class"),
            )
            return
        try:
            with FileSystems.open(path) as f:
                data = f.read()
        except Exception as exc:  # noqa: BLE001 - a missing file is data, not a bug
            yield FAILURES, schema.failure_row(path, SOURCE, STAGE, "unreadable_file", f"{type(exc).__name__}: {exc}")
            return
        try:
            pixels, _ = img.to_square_rgb(data, self.cfg.image_size, self.cfg.resize, self.cfg.max_pixels)
        except img.ImageError as exc:
            yield FAILURES, schema.failure_row(path, SOURCE, STAGE, exc.reason, exc.detail)
            return
        provenance = {"path": path, "class": record["class"], "split": record["split"]}
        yield (
            IMAGES,
            {
                "image_id": schema.image_id_for(pixels),
                "image": img.encode_png(pixels),
                "source": SOURCE,
                "provenance": json.dumps(provenance, sort_keys=True),
            },
        )


def class_key(image_row: dict) -> tuple[tuple[str | None, str], tuple[str, str]]:
    prov = json.loads(image_row["provenance"])
    return (prov["split"], prov["class"]), (prov["path"], image_row["image_id"])


# --- sentences -------------------------------------------------------------------------------------
class ClassSentences:
    """((split, class), [(path, image_id)...]) -> sentences and skipped rows (RunSource callable)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def __call__(self, element: tuple[tuple[str | None, str], Iterable[tuple[str, str]]]) -> Iterator[tuple[str, dict]]:
        (split, cls), members = element
        members = sorted(members)
        # The same pixels under two paths of one class count once (no image twice in a sentence).
        first_path: dict[str, str] = {}
        for path, image_id in members:
            first_path.setdefault(image_id, path)
        unique = sorted((path, image_id) for image_id, path in first_path.items())
        key = f"{split}/{cls}" if split else cls
        sentences, unused = class_sentences(len(unique), key, self.cfg)
        for number, indices in enumerate(sentences):
            image_ids = [unique[i][1] for i in indices]
            sentence_id = schema.sentence_id_for(SOURCE, key, self.cfg.seed, number, tuple(image_ids))
            yield SENTENCES, schema.sentence_row(sentence_id, SOURCE, "sequence", image_ids, group=cls, split=split)
        reason = "class_too_small" if len(unique) < self.cfg.images_per_sentence else "class_remainder"
        for i in unused:
            yield (
                FAILURES,
                schema.failure_row(
                    unique[i][0],
                    SOURCE,
                    GROUP_STAGE,
                    reason,
                    f"class {key!r} has {len(unique)} readable images; a sentence takes {self.cfg.images_per_sentence}",
                    status="skipped",
                ),
            )


def group_record_id(element: tuple) -> str:
    (split, cls), _ = element
    return f"{split}/{cls}" if split else cls


# --- the stage -------------------------------------------------------------------------------------
class ImageNetSource(SourceTransform):
    """PBegin -> SourceOutputs(images, sentences, failures) of same-class sentences."""

    def expand(self, pbegin: beam.pvalue.PBegin) -> SourceOutputs:
        decoded = (
            pbegin
            | "ListImages" >> ListImages(self.cfg.input)
            | "Reshuffle" >> beam.Reshuffle()
            | "DecodeImages"
            >> RunSource(
                DecodeImage(self.cfg), source=SOURCE, stage=STAGE, record_id=lambda r: r.get("path") or "<no path>"
            )
        )
        grouped = (
            decoded.images
            | "ByClass" >> beam.Map(class_key)
            | "GroupByClass" >> beam.GroupByKey()
            | "ClassSentences"
            >> RunSource(ClassSentences(self.cfg), source=SOURCE, stage=GROUP_STAGE, record_id=group_record_id)
        )
        failures = (decoded.failures, grouped.failures) | "Failures" >> beam.Flatten()
        return SourceOutputs(decoded.images, grouped.sentences, failures)


STAGE_SPEC = SourceStage("imagenet", Config, ImageNetSource, __doc__)
source_transform = STAGE_SPEC.source_transform  # `uvd dataset`: the entry's options checked before any work
run = STAGE_SPEC.run  # `uvd imagenet --input ROOT_OR_CSV --output OUT [options] [beam flags]`
