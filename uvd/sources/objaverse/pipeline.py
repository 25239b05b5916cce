"""GLB/GLTF/OBJ/PLY/STL meshes -> 24-view orbit renders -> images + 16-view "sequence" sentences.

Flow (each step labelled in the Beam graph):
    ListMeshes   a directory or glob of files (every file is an input: a file that is no mesh
                 becomes a skipped row `unsupported_format`, a material/buffer/texture file beside
                 the meshes a skipped row `mesh_companion`), or a .txt list of paths and/or uids
    Reshuffle    spread objects over workers (a listing arrives as one bundle)
    Render       per object (uvd.transforms.render): load + check the mesh, normalise it to the
                 unit sphere, 24 cameras at 15 degree azimuth steps on one seeded radius and
                 elevation, render headless (OSMesa or EGL, one GL context per worker, made in
                 setup()), then image rows and one sentence per 16-view window (RunSource:
                 counters and dead letter; a broken mesh is a failure row with its reason)

Why 16-view windows and not one 24-view sentence: a sentence holds at most
schema.MAX_IMAGES_PER_SENTENCE = 16 images (16 x 256 tokens = the 4096-token context), so the
24-view orbit cannot be one sentence. The orbit is a circle, so windows wrap around it: a window
is 16 consecutive views (240 degrees of the turn), and with the default stride 8 the three windows
start at azimuths 0, 120 and 240 and every view sits in exactly two of them (no view favoured, no
view dropped). `stride: 24` gives one sentence per object (the paper's 42k train / 8k test count);
`wrap: false` keeps windows inside views 0..23 (starts 0, 8 with the defaults).

Objaverse uids resolve in the `objaverse` package's local cache, without the package and without
network: `<objaverse_cache>/hf-objaverse-v1/glbs/<000-xxx>/<uid>.glb` (the layout its
load_objects() downloads into; `objaverse_cache` defaults to ~/.objaverse as the package's
BASE_PATH). A remote cache (gs://...) needs the package's `hf-objaverse-v1/object-paths.json.gz`
beside `glbs/`. A uid not found is a failure row `not_found`. A list of full mesh paths (local or
gs://) needs no cache at all.

Object ids (the sentences' `group`, the seed of the cameras and of the split) are unique and stable:
    a uid list entry           the uid
    a file of a folder/glob    its path relative to the input folder (a glob: the folder before the
                               first wildcard), extension kept: `a/model.obj` and `b/model.obj`, or
                               `duck.glb` beside `duck.obj`, are different objects
    a path in a list file      `blake2b-<hash of the file's bytes>`: the same file under two paths is
                               one object, two files are never one (a .gltf hashes its JSON only)
The file stem alone is never an id: ShapeNet-style trees name every file `model.obj`.

The train/validation split is fixed here, by object id (`group`), from a hash:
validation_fraction 0.16 matches the paper's 8k held-out of 50k objects. It does not depend on
`seed`, so re-rendering with another seed never moves an object across splits. The held-out split
is called `validation`, as every other source calls it.
"""

from __future__ import annotations

import functools
import glob
import gzip
import hashlib
import json
import logging
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from uvd import hashing, schema
from uvd.config import require
from uvd.core.outputs import FAILURES, IMAGES, SENTENCES, RunSource, SourceOutputs, SourceTransform
from uvd.core.stage import SourceStage
from uvd.transforms import render as rt
from uvd.transforms.image import encode_png

SOURCE = "objaverse"
STAGE = "objaverse"
LIST_EXTENSIONS = (".txt", ".lst")
# Files a mesh reads beside itself (OBJ materials, glTF buffers, textures): inputs, but no objects.
COMPANION_EXTENSIONS = (".mtl", ".bin", ".png", ".jpg", ".jpeg", ".webp", ".ktx2", ".tga", ".bmp")
UID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
PLATFORMS = ("egl", "osmesa")
OBJAVERSE_VERSIONED_DIR = "hf-objaverse-v1"
FILTER_REASONS = ("too_many_faces", "file_too_large")  # valid objects refused by a config limit
OBJECT_PATHS = "object-paths.json.gz"  # uid -> "glbs/000-xxx/<uid>.glb", as the package keeps it

log = logging.getLogger("uvd.objaverse")


@dataclass
class Config:
    """Options of the Objaverse source (manifest `sources.<name>.options`, or `uvd objaverse` flags)."""

    input: str  # dir, glob, or a .txt list of mesh paths / uids
    objaverse_cache: str = "~/.objaverse"  # where uids resolve (see module docstring)
    seed: int = 0  # radius and elevation per object come from (seed, uid)
    num_views: int = rt.NUM_VIEWS
    azimuth_step_deg: float = rt.AZIMUTH_STEP_DEG
    radius_min: float = rt.RADIUS_RANGE[0]
    radius_max: float = rt.RADIUS_RANGE[1]
    elevation_min_deg: float = rt.ELEVATION_RANGE_DEG[0]
    elevation_max_deg: float = rt.ELEVATION_RANGE_DEG[1]
    window: int = schema.MAX_IMAGES_PER_SENTENCE  # views per sentence
    stride: int = 8  # views between window starts
    wrap: bool = True  # windows wrap around the orbit (it is a circle)
    validation_fraction: float = 0.16  # objects held out as split "validation", by id hash
    yfov_deg: float = 85.0  # fits the unit sphere from radius 1.5 (83.6 deg)
    background: list[int] = field(default_factory=lambda: [255, 255, 255])
    platform: str = "egl"  # PYOPENGL_PLATFORM unless already set: egl or osmesa
    supersample: int = 1  # render at k x 256 and average down (anti-aliasing)
    max_metallic: float = 0.0  # metalness cap: no environment map, metals go black
    max_faces: int = 2_000_000  # larger objects are `filtered` (0 = no limit)
    max_file_mb: float = 512.0  # larger files are `filtered` before reading (0 = no limit)

    def validate(self) -> None:
        require(bool(self.input), "input", "give a directory, a glob, or a .txt list of mesh paths/uids")
        require(self.num_views >= 1, "num_views", f"must be >= 1, got {self.num_views}")
        require(self.azimuth_step_deg > 0, "azimuth_step_deg", f"must be > 0, got {self.azimuth_step_deg}")
        require(
            0 < self.radius_min <= self.radius_max,
            "radius_min",
            f"need 0 < radius_min <= radius_max, got {self.radius_min}, {self.radius_max}",
        )
        require(
            rt.fits_in_view(self.radius_min, self.yfov_deg),
            "yfov_deg",
            f"the unit sphere seen from radius_min {self.radius_min} needs a wider field of view than "
            f"{self.yfov_deg} deg (and radius_min must be > 1): raise yfov_deg or radius_min",
        )
        require(
            -90 < self.elevation_min_deg <= self.elevation_max_deg < 90,
            "elevation_min_deg",
            f"need -90 < min <= max < 90, got {self.elevation_min_deg}, {self.elevation_max_deg}",
        )
        require(
            1 <= self.window <= min(schema.MAX_IMAGES_PER_SENTENCE, self.num_views),
            "window",
            f"must be 1..min({schema.MAX_IMAGES_PER_SENTENCE}, num_views={self.num_views}), got {self.window}",
        )
        require(self.stride >= 1, "stride", f"must be >= 1, got {self.stride}")
        require(
            0.0 <= self.validation_fraction <= 1.0,
            "validation_fraction",
            f"must be in [0, 1], got {self.validation_fraction}",
        )
        require(
            len(self.background) == 3 and all(0 <= c <= 255 for c in self.background),
            "background",
            f"an RGB triple of 0..255, got {self.background!r}",
        )
        require(self.platform in PLATFORMS, "platform", f"one of {PLATFORMS}, got {self.platform!r}")
        require(self.supersample in (1, 2, 3, 4), "supersample", f"1..4, got {self.supersample}")
        require(0.0 <= self.max_metallic <= 1.0, "max_metallic", f"must be in [0, 1], got {self.max_metallic}")
        require(self.max_faces >= 0, "max_faces", "must be >= 0 (0 = no limit)")
        require(self.max_file_mb >= 0, "max_file_mb", "must be >= 0 (0 = no limit)")


# --- pure helpers ----------------------------------------------------------------------------------
def view_windows(num_views: int, window: int, stride: int, wrap: bool = True) -> list[list[int]]:
    """Index lists of the sentences cut from one orbit (see the module docstring for why)."""
    if wrap:
        return [[(start + i) % num_views for i in range(window)] for start in range(0, num_views, stride)]
    return [list(range(start, start + window)) for start in range(0, num_views - window + 1, stride)]


def split_for(uid: str, validation_fraction: float) -> str:
    """'validation' for a fixed fraction of object ids, else 'train': a pure function of the id."""
    return "validation" if hashing.unit_float(f"objaverse-split:{uid}") < validation_fraction else "train"


def mesh_type(path: str) -> str:
    return posixpath.splitext(path)[1].lower().lstrip(".")


def input_root(input_: str) -> str | None:
    """The folder object ids are relative to: the input folder, a glob's folder before its first
    wildcard, a single mesh file's folder; None for a list file (its paths get content ids)."""
    if input_.lower().endswith(LIST_EXTENSIONS):
        return None
    wild = re.search(r"[*?\[]", input_)
    if wild is not None:
        return posixpath.dirname(input_[: wild.start()])
    if is_mesh_path(input_):
        return posixpath.dirname(input_)
    return input_.rstrip("/")


def relative_id(path: str, root: str) -> str | None:
    """`path` relative to `root`, '/'-separated, or None when it is not below it."""
    if "://" not in path and "://" not in root:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root or "."))
        return None if rel == "." or rel.startswith(".." + os.sep) or rel == ".." else rel.replace(os.sep, "/")
    prefix = root.rstrip("/") + "/"
    return path[len(prefix) :] or None if path.startswith(prefix) else None


def content_id(source: str | bytes) -> str:
    """`blake2b-<32 hex>` of a file's bytes (a local path is read in chunks)."""
    h = hashlib.blake2b(digest_size=16)
    if isinstance(source, (bytes, bytearray)):
        h.update(source)
    else:
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return f"blake2b-{h.hexdigest()}"


def is_uid(entry: str) -> bool:
    return bool(UID_PATTERN.match(entry))


def resolve_uid(uid: str, cache: str) -> str | None:
    """Path of uid's GLB in the objaverse package's cache layout, or None if it is not there.

    A local (or mounted) cache is searched directly: glbs/*/<uid>.glb is ~160 stat calls. A remote
    cache (gs://, s3://...) is looked up in its object-paths.json.gz, the package's own uid -> path
    index, read once per worker: listing a bucket per uid would not scale.
    """
    if "://" in cache:
        relative = _remote_index(cache.rstrip("/")).get(uid)
        return FileSystems.join(cache.rstrip("/"), OBJAVERSE_VERSIONED_DIR, relative) if relative else None
    root = os.path.expanduser(cache)
    for base in (os.path.join(root, OBJAVERSE_VERSIONED_DIR), root):
        hits = sorted(glob.glob(os.path.join(glob.escape(base), "glbs", "*", f"{uid}.glb")))
        if hits:
            return hits[0]
    return None


@functools.lru_cache(maxsize=2)
def _remote_index(cache: str) -> dict[str, str]:
    path = FileSystems.join(cache, OBJAVERSE_VERSIONED_DIR, OBJECT_PATHS)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return json.loads(gzip.decompress(f.read()))


def list_entries(text: str, base: str = "") -> Iterator[str]:
    """Lines of a list file: one mesh path or uid each; blank lines and `#` comments skipped.
    Relative paths are relative to `base` (the list file's folder)."""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if base and not is_uid(line) and "://" not in line and not line.startswith("/"):
            line = FileSystems.join(base, line)
        yield line


def pattern_for(input_: str) -> str:
    """Glob pattern of the input: a directory means every file below it (each one an input)."""
    if re.search(r"[*?\[]", input_) or input_.lower().endswith(rt.MESH_EXTENSIONS):
        return input_
    return FileSystems.join(input_.rstrip("/"), "**")


def is_mesh_path(path: str) -> bool:
    return path.lower().endswith(rt.MESH_EXTENSIONS)


def not_a_mesh(path: str) -> dict | None:
    """The skipped row of a listed file that is no mesh (None for a mesh): every file is an input."""
    if is_mesh_path(path):
        return None
    if path.lower().endswith(COMPANION_EXTENSIONS):
        return schema.failure_row(
            path,
            SOURCE,
            STAGE,
            "mesh_companion",
            "read by the mesh that references it, not an object of its own",
            status="skipped",
        )
    return schema.failure_row(
        path, SOURCE, STAGE, "unsupported_format", f"not one of {', '.join(rt.MESH_EXTENSIONS)}", status="skipped"
    )


# --- one object ------------------------------------------------------------------------------------
class RenderObject:
    """An input entry (mesh path or uid) -> (tag, row) pairs for RunSource.

    The GL context is created in setup(), once per worker; called without setup() (tests, a
    notebook) it is created on first use.
    """

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.root = input_root(cfg.input)
        self.renderer: rt.MeshRenderer | None = None

    def setup(self) -> None:
        if self.renderer is None:
            cfg = self.cfg
            self.renderer = rt.MeshRenderer(
                platform=cfg.platform,
                yfov_deg=cfg.yfov_deg,
                background=tuple(cfg.background),
                supersample=cfg.supersample,
                max_metallic=cfg.max_metallic,
            )

    def teardown(self) -> None:
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None

    def views(self, uid: str) -> list[rt.View]:
        cfg = self.cfg
        return rt.orbit_views(
            uid,
            cfg.seed,
            cfg.num_views,
            cfg.azimuth_step_deg,
            (cfg.radius_min, cfg.radius_max),
            (cfg.elevation_min_deg, cfg.elevation_max_deg),
        )

    def _load_source(self, path: str) -> tuple[str | bytes, str | None]:
        """A local path as is (trimesh finds .mtl/.bin/textures beside it); remote files as bytes
        (self-contained GLB/OBJ; a remote .gltf with external buffers fails as `unreadable`).
        Files over max_file_mb are refused before they are read."""
        local = path.removeprefix("file://") if "://" not in path or path.startswith("file://") else None
        try:
            size = os.path.getsize(local) if local else FileSystems.match([path])[0].metadata_list[0].size_in_bytes
        except Exception as exc:  # noqa: BLE001 - any filesystem error means the file is not there
            raise rt.MeshError("not_found", f"{type(exc).__name__}: {exc}") from exc
        if self.cfg.max_file_mb and size > self.cfg.max_file_mb * 2**20:
            raise rt.MeshError("file_too_large", f"{size / 2**20:.1f} MB > max_file_mb {self.cfg.max_file_mb}")
        if local:
            return local, None
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            return f.read(), mesh_type(path)

    def object_id(self, path: str, source: str | bytes) -> str:
        """See the module docstring: relative path below the input folder, else a content hash."""
        rel = relative_id(path, self.root) if self.root is not None else None
        return rel if rel else content_id(source)

    def __call__(self, entry: str) -> Iterator[tuple[str, dict]]:
        cfg = self.cfg
        uid = None
        if is_uid(entry):
            uid, path = entry, resolve_uid(entry, cfg.objaverse_cache)
            if path is None:
                yield (
                    FAILURES,
                    schema.failure_row(entry, SOURCE, STAGE, "not_found", f"uid not in {cfg.objaverse_cache}"),
                )
                return
        else:
            path = entry
        skipped = not_a_mesh(path)
        if skipped is not None:
            yield FAILURES, {**skipped, "record_id": entry}
            return
        self.setup()
        try:
            source, file_type = self._load_source(path)
            uid = uid or self.object_id(path, source)
            views = self.views(uid)
            images = rt.render_views(source, self.renderer, views, file_type=file_type, max_faces=cfg.max_faces)
        except rt.MeshError as exc:
            status = "filtered" if exc.reason in FILTER_REASONS else "failed"
            yield FAILURES, schema.failure_row(entry, SOURCE, STAGE, exc.reason, exc.detail, status=status)
            return
        image_ids = []
        for view, pixels in zip(views, images):
            image_id = schema.image_id_for(pixels)
            image_ids.append(image_id)
            provenance = {"uid": uid, "path": path, "seed": cfg.seed, **view.as_dict()}
            yield (
                IMAGES,
                {
                    "image_id": image_id,
                    "image": encode_png(pixels),
                    "source": SOURCE,
                    "provenance": json.dumps(provenance, sort_keys=True),
                },
            )
        split = split_for(uid, cfg.validation_fraction)
        orbit = (
            cfg.seed,
            cfg.num_views,
            cfg.azimuth_step_deg,
            cfg.radius_min,
            cfg.radius_max,
            cfg.elevation_min_deg,
            cfg.elevation_max_deg,
        )
        for window in view_windows(cfg.num_views, cfg.window, cfg.stride, cfg.wrap):
            sentence_id = schema.sentence_id_for(SOURCE, uid, orbit, tuple(window))
            yield (
                SENTENCES,
                schema.sentence_row(
                    sentence_id, SOURCE, "sequence", [image_ids[i] for i in window], group=uid, split=split
                ),
            )


# --- the stage -------------------------------------------------------------------------------------
class ListMeshes(beam.PTransform):
    """PBegin -> entries (mesh paths or uids), one per object."""

    def __init__(self, input_: str) -> None:
        super().__init__()
        self.input = input_

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        if self.input.lower().endswith(LIST_EXTENSIONS):
            return (
                pbegin
                | "MatchList" >> fileio.MatchFiles(self.input)
                | "ReadList" >> beam.FlatMap(lambda m: list_entries(_read_text(m.path), posixpath.dirname(m.path)))
            )
        return (
            pbegin | "MatchFiles" >> fileio.MatchFiles(pattern_for(self.input)) | "Paths" >> beam.Map(lambda m: m.path)
        )


def _read_text(path: str) -> str:
    with FileSystems.open(path) as f:
        return f.read().decode("utf-8")


class ObjaverseSource(SourceTransform):
    """PBegin -> SourceOutputs(images, sentences, failures) of the Objaverse source."""

    def expand(self, pbegin: beam.pvalue.PBegin) -> SourceOutputs:
        return (
            pbegin
            | "ListMeshes" >> ListMeshes(self.cfg.input)
            | "Reshuffle" >> beam.Reshuffle()
            | "Render" >> RunSource(RenderObject(self.cfg), source=SOURCE, stage=STAGE)
        )


STAGE_SPEC = SourceStage("objaverse", Config, ObjaverseSource, __doc__)
source_transform = STAGE_SPEC.source_transform  # `uvd dataset`: the entry's options checked before any work
run = STAGE_SPEC.run  # `uvd objaverse --input DIR_GLOB_OR_LIST --output OUT [options] [beam flags]`
