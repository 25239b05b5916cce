"""Where `uvd laion`'s time goes on the bench_peers corpus: CPU per image by phase, Beam's share.

    .venv/bin/python benchmarks/bench_peers_profile.py [--urls 2000 --distinct 970] [-- uvd laion flags]

Runs in one process against the loopback corpus server of bench_peers.py:
1. the row path without Beam (scheduler.py + RowStep over the metadata rows), with thread CPU time
   summed per phase: download attempt (requests/urllib3), decode (PIL header + cv2 reduced DCT),
   resize/crop, encode (the images table format), everything else;
2. the whole stage (`uvd laion`, Beam local runner) on the same rows, as a subprocess;
the difference of CPU per image between the two is what Beam and the table writes cost.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_peers import BENCH_DIR, CorpusServer, run_tool, uvd_cmd, uvd_saved, write_metadata  # noqa: E402
from benchmarks.bench_peers_corpus import build_corpus  # noqa: E402

PHASES: dict[str, float] = defaultdict(float)
_lock = threading.Lock()


def timed(name: str, fn):  # noqa: ANN001, ANN201 - wraps any callable
    def wrapper(*args, **kwargs):  # noqa: ANN202
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            with _lock:
                PHASES[name] += time.thread_time() - start

    return wrapper


def without_beam(meta: Path, extra: list[str]) -> tuple[int, float, float]:
    import cv2

    from uvd.sources.laion import downloader, pipeline, reader, record
    from uvd.sources.laion.scheduler import Scheduler
    from uvd.transforms import image

    cv2.setNumThreads(1)
    cfg, _, _ = pipeline.parse_args(
        ["--input", str(meta), "--output", "/dev/null", "--allow_private_addresses", "true", *extra]
    )
    downloader.Downloader.attempt = timed("download", downloader.Downloader.attempt)
    image.decode_image = timed("decode", image.decode_image)
    image.apply_geometry = timed("resize", image.apply_geometry)
    record.encode_image = timed("encode", image.encode_image)
    record.image_id_for = timed("hash", record.image_id_for)
    record.to_square_rgb = image.to_square_rgb
    d = downloader.Downloader(cfg.download())
    step = timed("row_total", record.RowStep(d, cfg.render(), cfg.filters()))
    sched = Scheduler(step, threads=cfg.download_threads, per_host=cfg.max_per_host)
    columns = reader.metadata_columns(str(meta))
    ok = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for chunk in reader.list_chunks(str(meta), cfg.chunk_rows):
        for rows in sched.run(reader.read_chunk(chunk, columns), cfg.total_timeout_s):
            ok += any(tag == "sentences" for tag, _ in rows)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    sched.close()
    return ok, cpu, wall


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=2000)
    parser.add_argument("--distinct", type=int, default=970)
    parser.add_argument("uvd_args", nargs="*")
    args = parser.parse_args(argv)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    bodies = build_corpus(args.distinct)
    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as tmp, CorpusServer(bodies) as server:
        meta = Path(tmp) / "meta.parquet"
        write_metadata(meta, server.port, args.urls, args.distinct, 0.03, 0)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        stage = run_tool(uvd_cmd(meta, Path(tmp) / "out", args.uvd_args), env, Path(tmp) / "log", 900)
        stage_ok, _ = uvd_saved(Path(tmp) / "out")
        ok, cpu, wall = without_beam(meta, args.uvd_args)
    print(f"profile: {args.urls} URLs, {ok} images, load {os.getloadavg()[0]:.1f}")
    print(
        f"  row path without Beam: {ok / wall:.0f} img/s wall, {cpu / ok * 1e3:.2f} ms CPU per image "
        f"({ok / cpu:.0f} img per CPU second)"
    )
    row_total = PHASES.pop("row_total")
    for name, secs in sorted(PHASES.items(), key=lambda kv: -kv[1]):
        print(f"    {name:9s} {secs / ok * 1e3:6.2f} ms/img  {secs / cpu:5.1%} of CPU")
    inner = sum(PHASES.values())
    print(f"    {'other row':9s} {(row_total - inner) / ok * 1e3:6.2f} ms/img (checks, provenance, rows)")
    print(f"    {'scheduler':9s} {(cpu - row_total) / ok * 1e3:6.2f} ms/img (main loop, futures, reading rows)")
    print(
        f"  whole stage (Beam local runner, tables written): {stage_ok / stage['wall_s']:.0f} img/s wall, "
        f"{stage['cpu_s'] / stage_ok * 1e3:.2f} ms CPU per image, peak RSS {stage['peak_rss_mb']:.0f} MB "
        f"-> Beam + writes + start-up {(stage['cpu_s'] - cpu) / stage_ok * 1e3:.2f} ms/img"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
