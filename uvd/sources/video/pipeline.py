"""Video files -> 16-frame clips at frame strides 10/20/30 -> images + "sequence" sentences.

Flow (each step labelled in the Beam graph):
    ListVideos   a directory/glob of video files, or a CSV/Parquet/JSONL manifest
                 (path, optional video_id, Kinetics-style start/end seconds, optional split)
    PlanClips    open each video once (frame count, fps, size, timestamps) and plan its clips per
                 stride, seeded per video id (uvd.transforms.video.plan_clips); clips that do not
                 fit become skipped rows here, unreadable videos failure rows
    Reshuffle    the video -> clips fan-out: a long video's clips spread over workers
    DecodeClips  one forward pass of the decoder (decord, or PyAV where decord has no wheel) over
                 the union of a task's frames, in order, scaling only the wanted frames where the
                 video is larger than needed; resize + center crop 256;
                 image rows and one sentence per clip (RunSource: counters and dead letter)

A decode task is up to `clips_per_task` clips of one video, of any strides, neighbours in time:
H.264 must decode every frame from the keyframe before a wanted frame, so clips of strides
10/20/30 whose spans overlap share that work when decoded together (one pass per video costs
about half the CPU of one pass per stride; benchmarks/bench_video.py prints both). Frames are
read one at a time in ascending order (the reader seeks forward, converts only the wanted ones):
the same CPU as one get_batch of them, but memory holds one decoded frame plus the 256 px PNGs of
the clips still open, however long the video, and a frame that fails fails only its clips.

Rules:
- Every file under a folder input is an input: one that is no video (by extension) is a skipped
  row `unsupported_format`.
- A video's id (record id, `group`, clip seed) is its path relative to the input folder with the
  extension (`a/clip.mp4` and `a/clip.mkv` are two videos); a manifest row's is its `video_id`
  column, else the path as the manifest writes it.
- A broken file gives the frames that decode, with either decoder: decord refuses a whole file
  that FFmpeg reads part of (a truncated MP4: "av_read_frame failed"), so a file decord cannot
  open is read with PyAV; clips inside the decodable part become sentences, a clip that needs a
  frame that does not decode is a failure row `decode_error`, and a file nothing decodes at all
  is one row `unreadable_video`.
- The card's inputs are videos (manifest rows): PlanClips counts each one, as "with sentences"
  when clips were planned for it (each clip then ends as a sentence or a failure row) or
  "failures only"; the decode tasks are not counted again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import posixpath
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

# cv2 (via uvd.transforms.image) must load before decord: decord's wheel bundles zlib 1.2.3, and if
# it loads first, OpenCV's libpng binds to it and writes corrupt PNGs ("bad parameters to zlib").
from uvd.transforms.image import encode_png, resize_crop  # isort: skip

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from uvd import schema
from uvd.config import require
from uvd.core.outputs import (
    FAILURES,
    IMAGES,
    SENTENCES,
    RunSource,
    SourceOutputs,
    SourceTransform,
    error_detail,
)
from uvd.core.stage import SourceStage
from uvd.transforms import video as vt

SOURCE = "video"
STAGE = "video"
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ts")
MANIFEST_EXTENSIONS = (".csv", ".parquet", ".jsonl", ".json")
# Manifest column -> accepted names (Kinetics CSVs say youtube_id, time_start, time_end).
COLUMNS = {
    "path": ("path",),
    "video_id": ("video_id", "youtube_id"),
    "start": ("start", "time_start"),
    "end": ("end", "time_end"),
    "split": ("split",),
}

log = logging.getLogger("uvd.video")


@dataclass
class Config:
    """Options of the video source (manifest `sources.<name>.options`, or `uvd video` flags)."""

    input: str  # dir, glob, or a .csv/.parquet/.jsonl manifest
    strides: list[int] = field(default_factory=lambda: [10, 20, 30])
    clips_per_video: int = 1  # per stride; 0 = every non-overlapping clip that fits
    clip_length: int = vt.CLIP_LENGTH  # frames per clip = images per sentence
    min_clip_length: int = vt.CLIP_LENGTH  # < clip_length: a too-short video gives one shorter clip
    placement: str = "random"  # "random" (seeded per video id) or "even"
    seed: int = 0
    image_size: int = schema.IMAGE_SIZE
    resize: str = "crop"  # "crop" (shorter side + center crop) or "squash"
    decode_at_reduced_size: bool = True  # let decord scale while decoding (much faster)
    decoder: str = "auto"  # "decord", "pyav", or "auto" (decord if installed)
    decode_threads: int = 1  # decoder threads per open video (1 = one core)
    clips_per_task: int = 8  # clips of one video decoded in one pass

    def validate(self) -> None:
        require(bool(self.input), "input", "give a directory, a glob or a .csv/.parquet/.jsonl manifest")
        require(
            bool(self.strides) and all(isinstance(s, int) and s >= 1 for s in self.strides),
            "strides",
            f"a list of frame strides >= 1, e.g. [10, 20, 30]; got {self.strides!r}",
        )
        require(len(set(self.strides)) == len(self.strides), "strides", f"repeated stride in {self.strides}")
        require(self.clips_per_video >= 0, "clips_per_video", "must be >= 0 (0 = all that fit)")
        require(
            1 <= self.clip_length <= schema.MAX_IMAGES_PER_SENTENCE,
            "clip_length",
            f"must be 1..{schema.MAX_IMAGES_PER_SENTENCE}, got {self.clip_length}",
        )
        require(
            1 <= self.min_clip_length <= self.clip_length,
            "min_clip_length",
            f"must be 1..clip_length ({self.clip_length}), got {self.min_clip_length}",
        )
        require(self.placement in vt.PLACEMENTS, "placement", f"one of {vt.PLACEMENTS}, got {self.placement!r}")
        require(self.image_size >= 16, "image_size", f"must be >= 16, got {self.image_size}")
        require(self.resize in ("crop", "squash"), "resize", f"'crop' or 'squash', got {self.resize!r}")
        require(self.decoder in DECODERS, "decoder", f"one of {DECODERS}, got {self.decoder!r}")
        require(
            self.decoder != "decord" or _has_decord(),
            "decoder",
            "decord is not installed here (no wheel for this platform?); use 'pyav' or 'auto'",
        )
        require(self.decode_threads >= 0, "decode_threads", "must be >= 0 (0 = the decoder decides)")
        require(self.clips_per_task >= 1, "clips_per_task", "must be >= 1")


# --- listing ---------------------------------------------------------------------------------------
def is_manifest(path: str) -> bool:
    return path.lower().endswith(MANIFEST_EXTENSIONS)


def glob_for(input_: str) -> tuple[str, str]:
    """(pattern, base): a directory means every file below it; ids are paths relative to base."""
    wild = re.search(r"[*?\[]", input_)
    if wild is None:
        if input_.lower().endswith(VIDEO_EXTENSIONS):
            return input_, posixpath.dirname(input_)
        base = input_.rstrip("/")
        return FileSystems.join(base, "**"), base
    return input_, posixpath.dirname(input_[: wild.start()])


def video_id_from_path(path: str, base: str) -> str:
    """Path relative to the input folder, extension kept (a stem alone collides)."""
    return path[len(base) :].lstrip("/") if base and path.startswith(base) else posixpath.basename(path)


def folder_video(path: str, base: str) -> dict:
    """A listed file -> its video dict; a file that is no video carries its skipped reason."""
    video = {"path": path, "video_id": video_id_from_path(path, base), "start": None, "end": None, "split": None}
    if not path.lower().endswith(VIDEO_EXTENSIONS):
        video["error"] = "unsupported_format"
    return video


def _pick(row: dict, name: str):
    for key in COLUMNS[name]:
        if row.get(key) not in (None, ""):
            return row[key]
    return None


def _resolve(path: str, manifest: str) -> str:
    """Manifest paths are relative to the manifest's folder unless absolute or with a scheme."""
    if "://" in path or path.startswith("/"):
        return path
    return FileSystems.join(posixpath.dirname(manifest), path)


def manifest_videos(manifest: str) -> Iterator[dict]:
    """One video dict per manifest row; a row without a path still comes out (as an error)."""
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    with FileSystems.open(manifest) as f:
        if manifest.lower().endswith(".parquet"):
            rows = pq.read_table(f).to_pylist()
        elif manifest.lower().endswith(".csv"):
            rows = pacsv.read_csv(f).to_pylist()
        else:
            rows = pajson.read_json(f).to_pylist()
    for n, row in enumerate(rows):
        path = _pick(row, "path")
        start, end = _pick(row, "start"), _pick(row, "end")
        video = {
            "path": _resolve(str(path), manifest) if path else "",
            "video_id": str(_pick(row, "video_id") or path or f"{manifest}#{n}"),
            "start": None if start is None else float(start),
            "end": None if end is None else float(end),
            "split": None if _pick(row, "split") is None else str(_pick(row, "split")),
        }
        if not path:
            video["error"] = "manifest_row_without_path"
        yield video


class ListVideos(beam.PTransform):
    """PBegin -> video dicts {path, video_id, start, end, split}."""

    def __init__(self, input_: str) -> None:
        super().__init__()
        self.input = input_

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        if is_manifest(self.input):
            return (
                pbegin
                | "MatchManifest" >> fileio.MatchFiles(self.input)
                | "ReadManifest" >> beam.FlatMap(lambda m: manifest_videos(m.path))
            )
        pattern, base = glob_for(self.input)
        return (
            pbegin
            | "MatchVideos" >> fileio.MatchFiles(pattern)
            | "ToVideo" >> beam.Map(lambda m: folder_video(m.path, base))
        )


# --- opening a video -------------------------------------------------------------------------------
@contextlib.contextmanager
def local_file(path: str) -> Iterator[str]:
    """A local path for `path`: itself, or a streamed temp copy of a remote file (gs://, s3://...).

    decord needs a seekable file; copying in chunks keeps memory flat however large the video.
    """
    if "://" not in path or path.startswith("file://"):
        yield path.removeprefix("file://")
        return
    suffix = posixpath.splitext(path)[1]
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        with FileSystems.open(path) as src:
            shutil.copyfileobj(src, tmp, length=16 << 20)
        tmp.flush()
        yield tmp.name


DECODERS = ("auto", "decord", "pyav")


def open_reader(path: str, threads: int, size: tuple[int, int] | None = None, decoder: str = "auto"):
    """A frame reader (decord's VideoReader, or PyAVReader), decoding at `size` (width, height).

    "auto" is decord where it is installed (its wheels cover Linux x86-64 but not every laptop)
    and PyAV otherwise; both give exact frames by index in presentation order. A file decord
    refuses is opened with PyAV, which reads the frames that decode (the module's broken-file rule).
    """
    if decoder == "pyav" or (decoder == "auto" and not _has_decord()):
        return PyAVReader(path, threads, size)
    # cv2 must load before decord: decord's wheel bundles an old zlib that, loaded first, makes
    # cv2.imencode('.png') write corrupt PNGs while reporting success (tests/pipelines/test_video.py).
    import cv2  # noqa: F401
    import decord

    width, height = size if size else (-1, -1)
    try:
        return decord.VideoReader(path, ctx=decord.cpu(0), width=width, height=height, num_threads=threads)
    except Exception as exc:  # noqa: BLE001 - decord raises DECORDError/RuntimeError for any bad file
        try:
            return PyAVReader(path, threads, size)
        except Exception:  # noqa: BLE001 - neither can read it: decord's message says why
            raise exc from None


def _has_decord() -> bool:
    import importlib.util

    return importlib.util.find_spec("decord") is not None


class _Array:
    """What decord returns per frame: an object with asnumpy()."""

    def __init__(self, array) -> None:
        self.array = array

    def asnumpy(self):
        return self.array

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape


class PyAVReader:
    """The part of decord's VideoReader the stage uses, over PyAV (FFmpeg).

    Opening demuxes the packet index (no decoding): frame i is the i-th presentation timestamp.
    Reading frame i decodes forward from the current position when no keyframe lies between, and
    otherwise seeks to the keyframe before it; only the returned frame is converted (and scaled).
    """

    def __init__(self, path: str, threads: int = 1, size: tuple[int, int] | None = None) -> None:
        import av

        self.container = av.open(path)
        if not self.container.streams.video:
            raise ValueError("no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.codec_context.thread_count = threads
        stamps, keys = [], []
        for packet in self.container.demux(self.stream):
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is not None and packet.size:
                stamps.append(stamp)
                if packet.is_keyframe:
                    keys.append(stamp)
        self.pts = np.array(sorted(stamps), dtype=np.int64)
        self.keys = np.array(sorted(keys) or self.pts[:1], dtype=np.int64)
        self.size = size
        self._frames = None
        self._last = None  # pts of the last decoded frame

    def __len__(self) -> int:
        return len(self.pts)

    def get_avg_fps(self) -> float:
        rate = self.stream.average_rate or self.stream.guessed_rate
        return float(rate) if rate else 0.0

    def get_frame_timestamp(self, indices) -> np.ndarray:
        start = (self.pts[np.asarray(indices)] - self.pts[0]) * float(self.stream.time_base)
        step = 1.0 / self.get_avg_fps() if self.get_avg_fps() else 0.0
        return np.stack([start, start + step], axis=1)

    def __getitem__(self, index: int) -> _Array:
        target = int(self.pts[index])
        key = int(self.keys[max(int(np.searchsorted(self.keys, target, side="right")) - 1, 0)])
        if self._frames is None or self._last is None or not key <= self._last < target:
            self.container.seek(key, stream=self.stream, backward=True, any_frame=False)
            self._frames = self.container.decode(self.stream)
        for frame in self._frames:
            if frame.pts is None:
                continue
            self._last = frame.pts
            if frame.pts == target:
                width, height = self.size if self.size else (frame.width, frame.height)
                return _Array(
                    frame.to_ndarray(
                        width=width, height=height, format="rgb24", interpolation="AREA" if self.size else None
                    )
                )
            if frame.pts > target:
                break
        self._frames = None
        raise ValueError(f"frame {index} (pts {target}) did not decode")


def probe(
    path: str, threads: int = 1, start_s: float | None = None, end_s: float | None = None, decoder: str = "auto"
) -> dict:
    """Frame count, fps, frame size and the [lo, hi) frames of the segment, from one open.

    Decodes the first frame, so a video that cannot decode at all fails here, once, rather than
    in every clip.
    """
    with local_file(path) as local:
        reader = open_reader(local, threads, decoder=decoder)
        num_frames = len(reader)
        if num_frames == 0:
            raise ValueError("no video frames")
        height, width = reader[0].shape[:2]
        lo, hi = 0, num_frames
        if start_s is not None or end_s is not None:
            times = reader.get_frame_timestamp(list(range(num_frames)))[:, 0]
            lo, hi = vt.frame_window(times, start_s, end_s)
        return {
            "num_frames": num_frames,
            "fps": float(reader.get_avg_fps()),
            "width": int(width),
            "height": int(height),
            "window": [lo, hi],
        }


# --- planning --------------------------------------------------------------------------------------
def video_key(video: dict) -> str:
    """Record id of a video: its id, plus its segment when the manifest gives one."""
    if video.get("start") is None and video.get("end") is None:
        return video["video_id"]
    return f"{video['video_id']}@{video.get('start')}-{video.get('end')}"


def clip_key(video: dict, stride: int, index: int) -> str:
    return f"{video_key(video)}/stride={stride}/clip={index}"


def _row_task(video: dict, row: dict) -> dict:
    return {"video": video, "row": row}


def plan_video(video: dict, cfg: Config) -> Iterator[dict]:
    """Video dict -> decode tasks, plus failure/skipped rows (as tasks) for what will not decode."""
    key = video_key(video)
    if video.get("error"):
        status = "skipped" if video["error"] == "unsupported_format" else "failed"
        detail = f"not one of {', '.join(VIDEO_EXTENSIONS)}" if status == "skipped" else ""
        yield _row_task(video, schema.failure_row(key, SOURCE, STAGE, video["error"], detail, status=status))
        return
    try:
        info = probe(video["path"], cfg.decode_threads, video.get("start"), video.get("end"), cfg.decoder)
    except Exception as exc:  # noqa: BLE001 - a broken file is data, not a bug
        yield _row_task(
            video, schema.failure_row(key, SOURCE, STAGE, "unreadable_video", f"{type(exc).__name__}: {exc}")
        )
        return
    lo, hi = info["window"]
    planned: list[vt.Clip] = []
    skipped: list[dict] = []
    for stride in cfg.strides:
        rng = vt.clip_rng(cfg.seed, video["video_id"], stride)
        clips, missing = vt.plan_clips(
            lo, hi, stride, cfg.clips_per_video, rng, cfg.clip_length, cfg.min_clip_length, cfg.placement
        )
        planned += clips
        need = vt.clip_span(stride, cfg.min_clip_length)
        skipped += [
            schema.failure_row(
                clip_key(video, stride, index),
                SOURCE,
                STAGE,
                "too_short_for_stride",
                f"{hi - lo} frames in window [{lo}, {hi}); clip {index + 1} at stride {stride} "
                f"does not fit (one clip needs {need})",
                status="skipped",
            )
            for index in range(len(clips), len(clips) + missing)
        ]
    for group in vt.group_clips(planned, cfg.clips_per_task):
        yield {"video": video, "info": info, "clips": [[c.stride, c.index, list(c.frames)] for c in group]}
    for row in skipped:
        yield _row_task(video, row)


def plan_outcome(tasks: list[dict]) -> str:
    """The card's record outcome of one video, from its plan (see the module docstring)."""
    return "records_with_sentences" if any("clips" in t for t in tasks) else "records_failures_only"


class PlanClips(beam.DoFn):
    """Beam wrapper of plan_video; counts videos read: the stage's inputs and their outcomes."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def setup(self) -> None:
        self.videos = Metrics.counter(f"uvd.{STAGE}", "videos")
        self.inputs = Metrics.counter(f"uvd.{STAGE}", "inputs")

    def process(self, video: dict) -> Iterator[dict]:
        self.videos.inc()
        self.inputs.inc()
        try:
            tasks = list(plan_video(video, self.cfg))
        except Exception as exc:  # noqa: BLE001 - a planning bug must not lose the video
            tasks = [
                _row_task(
                    video,
                    schema.failure_row(
                        video_key(video), SOURCE, STAGE, f"exception_{type(exc).__name__}", error_detail(exc)
                    ),
                )
            ]
        Metrics.counter(f"uvd.{STAGE}", plan_outcome(tasks)).inc()
        yield from tasks


# --- decoding --------------------------------------------------------------------------------------
def task_record_id(task: dict) -> str:
    if "row" in task:
        return task["row"]["record_id"]
    stride, index, _ = task["clips"][0]
    return clip_key(task["video"], stride, index)


class DecodeClips:
    """A decode task -> (tag, row) pairs for RunSource: each clip's frames as image rows and one
    sentence per clip. A frame that fails to decode fails the clips that need it, not the others."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def __call__(self, task: dict) -> Iterator[tuple[str, dict]]:
        if "row" in task:
            yield FAILURES, task["row"]
            return
        cfg, video, info = self.cfg, task["video"], task["info"]
        clips = [vt.Clip(stride, index, tuple(frames)) for stride, index, frames in task["clips"]]
        size = (
            vt.reduced_size(info["width"], info["height"], cfg.image_size, cfg.resize)
            if cfg.decode_at_reduced_size
            else None
        )
        with local_file(video["path"]) as local:
            try:
                reader = open_reader(local, cfg.decode_threads, size, cfg.decoder)
            except Exception as exc:  # noqa: BLE001 - it probed fine, so this is the file or disk
                for clip in clips:
                    yield (
                        FAILURES,
                        schema.failure_row(
                            clip_key(video, clip.stride, clip.index),
                            SOURCE,
                            STAGE,
                            "unreadable_video",
                            f"{type(exc).__name__}: {exc}",
                        ),
                    )
                return
            yield from self._decode(reader, video, info, clips)

    def _decode(self, reader, video: dict, info: dict, clips: list[vt.Clip]) -> Iterator[tuple[str, dict]]:
        """One forward pass over the union of the clips' frames; a clip is emitted at its last frame."""
        ending: dict[int, list[int]] = {}
        users: dict[int, int] = {}  # frame -> clips still open that need it
        for n, clip in enumerate(clips):
            ending.setdefault(clip.frames[-1], []).append(n)
            for f in set(clip.frames):
                users[f] = users.get(f, 0) + 1
        made: dict[int, tuple[str, bytes]] = {}  # frame -> (image_id, png), while still needed
        emitted: set[int] = set()
        closed: set[int] = set()

        def close(n: int) -> None:
            closed.add(n)
            for f in set(clips[n].frames):
                users[f] -= 1
                if users[f] == 0:
                    made.pop(f, None)

        for frame_no in sorted(users):
            try:
                pixels = resize_crop(reader[frame_no].asnumpy(), self.cfg.image_size, self.cfg.resize)
                made[frame_no] = (schema.image_id_for(pixels), encode_png(pixels))
            except Exception as exc:  # noqa: BLE001 - a bad stretch of one video fails only its clips
                for n, clip in enumerate(clips):
                    if n not in closed and frame_no in clip.frames:
                        yield (
                            FAILURES,
                            schema.failure_row(
                                clip_key(video, clip.stride, clip.index),
                                SOURCE,
                                STAGE,
                                "decode_error",
                                f"frame {frame_no}: {type(exc).__name__}: {exc}",
                            ),
                        )
                        close(n)
            for n in ending.get(frame_no, []):
                if n not in closed:
                    yield from self._emit(video, info, clips[n], made, emitted)
                    close(n)

    def _emit(
        self, video: dict, info: dict, clip: vt.Clip, made: dict[int, tuple[str, bytes]], emitted: set[int]
    ) -> Iterator[tuple[str, dict]]:
        for frame_no in clip.frames:
            if frame_no in emitted:
                continue
            emitted.add(frame_no)
            image_id, png = made[frame_no]
            provenance = {
                "path": video["path"],
                "video_id": video["video_id"],
                "frame": frame_no,
                "time_s": round(frame_no / info["fps"], 3) if info["fps"] else None,
            }
            yield (
                IMAGES,
                {
                    "image_id": image_id,
                    "image": png,
                    "source": SOURCE,
                    "provenance": json.dumps(provenance, sort_keys=True),
                },
            )
        image_ids = [made[f][0] for f in clip.frames]
        sentence_id = schema.sentence_id_for(SOURCE, video["video_id"], video["path"], clip.stride, clip.frames)
        yield (
            SENTENCES,
            schema.sentence_row(
                sentence_id, SOURCE, "sequence", image_ids, group=video["video_id"], split=video.get("split")
            ),
        )


# --- the stage -------------------------------------------------------------------------------------
class VideoSource(SourceTransform):
    """PBegin -> SourceOutputs(images, sentences, failures) of the video source."""

    def expand(self, pbegin: beam.pvalue.PBegin) -> SourceOutputs:
        return (
            pbegin
            | "ListVideos" >> ListVideos(self.cfg.input)
            | "PlanClips" >> beam.ParDo(PlanClips(self.cfg))
            | "Reshuffle" >> beam.Reshuffle()
            | "DecodeClips"
            >> RunSource(
                DecodeClips(self.cfg), source=SOURCE, stage=STAGE, record_id=task_record_id, count_records=False
            )
        )


STAGE_SPEC = SourceStage("video", Config, VideoSource, __doc__)
source_transform = STAGE_SPEC.source_transform  # `uvd dataset`: the entry's options checked before any work
run = STAGE_SPEC.run  # `uvd video --input DIR_OR_MANIFEST --output OUT [options] [beam flags]`
