"""The video stage on real H.264 files made here, each frame carrying its index as a bit strip."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uvd.config import ConfigError
from uvd.core.outputs import FAILURES, IMAGES, SENTENCES
from uvd.sample.videos.make_videos import SAMPLES, draw_counter, read_counter, write_video
from uvd.sources.video import pipeline as v
from uvd.transforms.image import decode_png

SAMPLE_DIR = Path(v.__file__).resolve().parents[2] / "sample" / "videos"


def _frames(n: int, w: int, h: int):
    """A moving gradient (so frames differ and the codec predicts) with the counter on top."""
    y, x = np.mgrid[0:h, 0:w]
    for i in range(n):
        base = np.stack([(x + 3 * i) % 256, (y + i) % 256, np.full_like(x, 90)], axis=2).astype(np.uint8)
        yield draw_counter(base, i)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    (root / "sub").mkdir()
    write_video(root / "long.mp4", _frames(480, 256, 192), crf=23, preset="superfast", gop=60)
    write_video(root / "sub" / "wide.mkv", _frames(200, 512, 288), crf=23, preset="superfast")
    write_video(root / "short.mp4", _frames(100, 256, 192), crf=23, preset="superfast")
    (root / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (root / "notes.txt").write_text("not a video: a skipped row unsupported_format")
    # A faststart MP4 cut in half: its index declares 300 frames, about 150 decode.
    with av.open(str(root / "cut_src.mp4"), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.height, stream.width, stream.pix_fmt = 192, 256, "yuv420p"
        stream.options = {"crf": "23", "preset": "superfast", "g": "30"}
        for frame in _frames(300, 256, 192):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = (root / "cut_src.mp4").read_bytes()
    (root / "cut_src.mp4").unlink()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    return root


def _video(path: Path, video_id: str | None = None, **kw) -> dict:
    return {"path": str(path), "video_id": video_id or path.name, "start": None, "end": None, "split": None, **kw}


def _run_plan(video: dict, cfg: v.Config) -> list[tuple[str, dict]]:
    decode = v.DecodeClips(cfg)
    return [pair for task in v.plan_video(video, cfg) for pair in decode(task)]


def _counters_by_sentence(pairs):
    images = {row["image_id"]: row for tag, row in pairs if tag == IMAGES}
    return [
        [read_counter(decode_png(images[i]["image"])) for i in row["image_ids"]]
        for tag, row in pairs
        if tag == SENTENCES
    ]


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_each_stride_gives_16_frames_in_order_at_that_stride(videos, decoder):
    cfg = v.Config(input=str(videos), clips_per_video=2, decoder=decoder)
    pairs = _run_plan(_video(videos / "long.mp4"), cfg)
    sentences = [row for tag, row in pairs if tag == SENTENCES]
    assert {s["kind"] for s in sentences} == {"sequence"} and {s["group"] for s in sentences} == {"long.mp4"}
    # 480 frames: stride 10 (a clip spans 151) fits both clips, strides 20 (301) and 30 (451) one.
    strides = sorted(int(np.diff(c)[0]) for c in _counters_by_sentence(pairs))
    assert strides == [10, 10, 20, 30]
    failures = [row for tag, row in pairs if tag == FAILURES]
    assert [(f["record_id"], f["status"], f["reason"]) for f in failures] == [
        ("long.mp4/stride=20/clip=1", "skipped", "too_short_for_stride"),
        ("long.mp4/stride=30/clip=1", "skipped", "too_short_for_stride"),
    ]
    for counters in _counters_by_sentence(pairs):
        assert len(counters) == 16
        assert len(set(np.diff(counters))) == 1 and np.diff(counters)[0] in (10, 20, 30), counters


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_decoded_frames_are_the_planned_ones_at_reduced_size(videos, decoder):
    cfg = v.Config(input=str(videos), decoder=decoder, clips_per_video=0)
    video = _video(videos / "sub" / "wide.mkv")  # 512x288: decord scales to 455x256 while decoding
    tasks = list(v.plan_video(video, cfg))
    planned = [frames for t in tasks if "clips" in t for _, _, frames in t["clips"]]
    assert planned and all(len(f) == 16 for f in planned)
    assert _counters_by_sentence([p for t in tasks for p in v.DecodeClips(cfg)(t)]) == planned
    assert v.open_reader(str(video["path"]), 1, (455, 256), decoder)[7].asnumpy().shape == (256, 455, 3)


def test_reduced_size_decode_matches_full_decode_then_resize(videos):
    video = _video(videos / "sub" / "wide.mkv")
    small = dict(_run_plan(video, v.Config(input="x", strides=[10])))
    full = dict(_run_plan(video, v.Config(input="x", strides=[10], decode_at_reduced_size=False)))
    a, b = decode_png(small[IMAGES]["image"]), decode_png(full[IMAGES]["image"])
    assert a.shape == b.shape == (256, 256, 3)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 6


def test_same_seed_same_sentences_other_seed_other_frames(videos):
    video = _video(videos / "long.mp4")
    ids = [
        r["sentence_id"]
        for _ in range(2)
        for t, r in _run_plan(video, v.Config(input="x", seed=1, strides=[10]))
        if t == SENTENCES
    ]
    assert len(ids) == 2 and ids[0] == ids[1]
    frames = lambda seed: [t["clips"] for t in v.plan_video(video, v.Config(input="x", seed=seed))]
    assert frames(1) == frames(1) and frames(1) != frames(2)


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_kinetics_window_bounds_the_frames(videos, decoder):
    cfg = v.Config(input="x", strides=[10], decoder=decoder)
    pairs = _run_plan(_video(videos / "long.mp4", start=4.0, end=10.0), cfg)  # frames 120..299
    (counters,) = _counters_by_sentence(pairs)
    assert counters[0] >= 120 and counters[-1] < 300
    failures = [r for t, r in _run_plan(_video(videos / "long.mp4", start=14.0, end=15.0), cfg)]
    assert [(f["record_id"], f["reason"]) for f in failures] == [
        ("long.mp4@14.0-15.0/stride=10/clip=0", "too_short_for_stride")
    ]


@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_too_short_and_corrupt_videos_become_rows(videos, decoder):
    cfg = v.Config(input="x", decoder=decoder)
    short = _run_plan(_video(videos / "short.mp4"), cfg)
    assert [(t, r["status"], r["reason"]) for t, r in short] == [(FAILURES, "skipped", "too_short_for_stride")] * 3
    corrupt = _run_plan(_video(videos / "corrupt.mp4"), cfg)
    assert [(t, r["status"], r["reason"], r["record_id"]) for t, r in corrupt] == [
        (FAILURES, "failed", "unreadable_video", "corrupt.mp4")
    ]
    missing = _run_plan(_video(videos / "nope.mp4"), cfg)
    assert [r["reason"] for _, r in missing] == ["unreadable_video"]


def test_a_clip_that_fails_to_decode_fails_alone(videos, monkeypatch):
    cfg = v.Config(input="x", strides=[10], clips_per_video=2)
    (task,) = list(v.plan_video(_video(videos / "long.mp4"), cfg))
    bad_first_frame = task["clips"][0][2][0]
    real_open = v.open_reader

    class Flaky:
        def __init__(self, reader):
            self.reader = reader

        def __getitem__(self, frame):
            if frame == bad_first_frame:
                raise RuntimeError("corrupt slice")
            return self.reader[frame]

    monkeypatch.setattr(v, "open_reader", lambda *a, **k: Flaky(real_open(*a, **k)))
    pairs = list(v.DecodeClips(cfg)(task))
    assert [t for t, _ in pairs].count(SENTENCES) == 1
    (failure,) = [r for t, r in pairs if t == FAILURES]
    assert failure["reason"] == "decode_error" and failure["record_id"] == "long.mp4/stride=10/clip=0"


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_manifest_rows_resolve_relative_paths_and_read_kinetics_columns(tmp_path, fmt):
    rows = [
        {"path": "clips/a.mp4", "youtube_id": "yt_a", "time_start": 1.0, "time_end": 9.0, "split": "train"},
        {"path": "gs://bucket/b.mp4", "youtube_id": None, "time_start": None, "time_end": None, "split": None},
        {"path": None, "youtube_id": "lost", "time_start": None, "time_end": None, "split": None},
    ]
    table = pa.Table.from_pylist(rows)
    manifest = tmp_path / f"m.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, manifest)
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, manifest)
    else:
        manifest.write_text("\n".join(json.dumps(r) for r in rows))
    got = list(v.manifest_videos(str(manifest)))
    assert got[0] == {
        "path": str(tmp_path / "clips" / "a.mp4"),
        "video_id": "yt_a",
        "start": 1.0,
        "end": 9.0,
        "split": "train",
    }
    assert got[1]["path"] == "gs://bucket/b.mp4" and got[1]["video_id"] == "gs://bucket/b.mp4"
    assert got[2]["error"] == "manifest_row_without_path"
    (task,) = list(v.plan_video(got[2], v.Config(input="x")))
    assert task["row"]["reason"] == "manifest_row_without_path"


def test_glob_and_ids():
    assert v.glob_for("/data/k400") == ("/data/k400/**", "/data/k400")
    assert v.glob_for("/data/k400/*/*.mp4") == ("/data/k400/*/*.mp4", "/data/k400")
    assert v.video_id_from_path("/data/k400/abseiling/x_1.mp4", "/data/k400") == "abseiling/x_1.mp4"
    # Same stem, two files: two videos (a stem alone would give both clips one id, seed and group).
    a, b = v.folder_video("/d/a/clip.mp4", "/d"), v.folder_video("/d/a/clip.mkv", "/d")
    assert (a["video_id"], b["video_id"]) == ("a/clip.mp4", "a/clip.mkv") and "error" not in a
    assert v.folder_video("/d/readme.txt", "/d")["error"] == "unsupported_format"


@pytest.mark.parametrize(
    "options, field",
    [
        ({"input": "x", "strides": []}, "strides"),
        ({"input": "x", "clip_length": 17}, "clip_length"),
        ({"input": "x", "resize": "pad"}, "resize"),
        ({"input": "x", "decoder": "opencv"}, "decoder"),
        ({"inputs": "x"}, "inputs"),
    ],
)
def test_bad_config_names_the_field(options, field):
    with pytest.raises(ConfigError, match=field):
        v.source_transform(options)


def test_sample_videos_are_small_and_match_their_recipe():
    files = sorted(SAMPLE_DIR.glob("*.mp4"))
    assert [f.name for f in files] == sorted(SAMPLES)
    assert sum(f.stat().st_size for f in files) < 1.5 * 2**20
    for f in files:
        info = v.probe(str(f))
        _, n, w, h, *_ = SAMPLES[f.name]
        assert (info["num_frames"], info["width"], info["height"]) == (n, w, h)


@pytest.mark.slow
def test_stage_writes_tables_and_accounts_for_every_video(videos, tmp_path):
    out = tmp_path / "out"
    assert (
        v.run(
            [
                "--input",
                str(videos),
                "--output",
                str(out),
                "--clips_per_video",
                "1",
                "--direct_running_mode=in_memory",
                "--direct_num_workers=1",
            ]
        )
        == 0
    )
    read = lambda t: pa.concat_tables(pq.read_table(p) for p in sorted((out / t).glob("part*.parquet"))).to_pylist()
    sentences, images, failures = read("sentences"), read("images"), read("failures")
    by_group = {}
    for s in sentences:
        by_group.setdefault(s["group"], []).append(s)
    assert {g: len(s) for g, s in by_group.items()} == {"long.mp4": 3, "sub/wide.mkv": 1}
    reasons = sorted((f["record_id"], f["reason"]) for f in failures)
    assert reasons == sorted(
        [
            ("corrupt.mp4", "unreadable_video"),
            ("notes.txt", "unsupported_format"),
            ("truncated.mp4/stride=10/clip=0", "decode_error"),  # frame 151 of 153 is cut
            *[(f"short.mp4/stride={s}/clip=0", "too_short_for_stride") for s in (10, 20, 30)],
            *[(f"sub/wide.mkv/stride={s}/clip=0", "too_short_for_stride") for s in (20, 30)],
            *[(f"truncated.mp4/stride={s}/clip=0", "too_short_for_stride") for s in (20, 30)],
        ]
    )
    pixels = {r["image_id"]: decode_png(r["image"]) for r in images}
    assert len(pixels) == len(images)  # deduplicated by content
    for s in sentences:
        counters = [read_counter(pixels[i]) for i in s["image_ids"]]
        step = np.diff(counters)
        assert len(counters) == 16 and len(set(step)) == 1 and step[0] in (10, 20, 30)
        assert all(
            json.loads(r["provenance"])["video_id"] == s["group"]
            for r in images
            if r["image_id"] in set(s["image_ids"])
        )


def test_remote_videos_stream_to_a_temp_file_that_is_removed(videos, monkeypatch):
    import io

    data = (videos / "short.mp4").read_bytes()
    opened = []
    monkeypatch.setattr(v.FileSystems, "open", lambda path: opened.append(path) or io.BytesIO(data))
    with v.local_file("gs://bucket/clips/short.mp4") as local:
        assert local.endswith(".mp4") and Path(local).read_bytes() == data
        assert v.probe(local)["num_frames"] == 100
    assert opened == ["gs://bucket/clips/short.mp4"] and not Path(local).exists()
    with v.local_file(str(videos / "short.mp4")) as local:
        assert local == str(videos / "short.mp4")  # local files are used in place


def test_png_encoding_survives_decord_imported_first():
    """decord's bundled zlib, loaded before cv2, corrupts cv2 PNGs: the stage's import order prevents it."""
    import subprocess
    import sys

    code = (
        "import decord\n"  # the hazardous order, as a user script might do
        "import numpy as np\n"
        "from uvd.sources.video import pipeline as video\n"
        "from uvd.transforms.image import decode_png, encode_png\n"
        "rng = np.random.default_rng(0)\n"
        "img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)\n"
        "assert (decode_png(encode_png(img)) == img).all()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_a_truncated_file_gives_the_frames_that_decode_with_either_decoder(videos):
    """decord alone refuses the whole file, PyAV reads its first half: one rule for both."""
    runs = {
        d: _run_plan(
            _video(videos / "truncated.mp4"),
            v.Config(input="x", strides=[4], clips_per_video=0, placement="even", decoder=d),
        )
        for d in ("decord", "pyav")
    }
    summary = {
        d: [(t, r.get("record_id") or r.get("sentence_id") or r["image_id"], r.get("reason")) for t, r in rows]
        for d, rows in runs.items()
    }
    assert summary["decord"] == summary["pyav"]
    counters = _counters_by_sentence(runs["decord"])
    assert len(counters) >= 2 and all(np.diff(c).tolist() == [4] * 15 for c in counters)
    assert max(max(c) for c in counters) < 160  # only the half that is there


@pytest.mark.slow
def test_the_cards_inputs_are_videos_not_decode_tasks(videos):
    import apache_beam as beam

    from uvd.assembly.card import record_metrics
    from uvd.core.options import pipeline_options

    p = beam.Pipeline(options=pipeline_options(["--direct_running_mode=in_memory", "--direct_num_workers=1"]))
    _ = p | v.VideoSource(v.Config(input=str(videos), strides=[10, 20], clips_per_task=1))
    counts = record_metrics(p.run())["video"]
    # long, truncated, sub/wide, short, corrupt, notes.txt: long alone has 2 decode tasks.
    assert counts == {"inputs": 6, "records_with_sentences": 3, "records_failures_only": 3}
