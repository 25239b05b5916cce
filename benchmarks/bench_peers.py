"""`uvd laion` beside img2dataset on one machine, one corpus, one loopback server, interleaved runs.

    .venv/bin/python benchmarks/bench_peers.py                 # make bench-peers: 3 rounds, 4000 URLs
    .venv/bin/python benchmarks/bench_peers.py --rounds 5 --urls 4000 --distinct 970
    .venv/bin/python benchmarks/bench_peers.py --rss-scaling 1000,4000,16000   # uvd peak RSS vs rows
    .venv/bin/python benchmarks/bench_peers.py --quality        # image_format png vs jpeg: bytes, dB

What it does (about 5 min on an idle 2-core box for 3 rounds; the first run adds ~2 min to build
img2dataset's venv and ~20 s per 1000 corpus images, both cached):
- installs img2dataset==1.47.0 in its own Python 3.11 venv (pyenv or python3.11 on PATH) under
  $UVD_BENCH_DIR (default /tmp/uvd-bench), with NO_ALBUMENTATIONS_UPDATE=1;
- builds the deterministic LAION-like corpus of bench_peers_corpus.py and a metadata Parquet of
  --urls rows over --distinct images, --bad of them bad (404, HTML, truncated JPEG, refused port);
- serves it from 127.0.0.1 in a separate process (so neither tool pays for the server);
- runs `uvd laion` (defaults + allow_private_addresses) and img2dataset (--image_size 256
  --resize_mode center_crop --output_format parquet -p <cores> -t 16), alternating which goes first;
- reports per run and as medians: saved images/s over wall time, per CPU second of the tool's
  process tree (os.wait4: the tool and the children it waited for), peak RSS of the process tree
  (sampled every 0.1 s, sum over processes), the load average seen, and uvd / img2dataset ratios.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_peers_corpus import build_corpus, corpus_stats, url_plan  # noqa: E402

BENCH_DIR = Path(os.environ.get("UVD_BENCH_DIR", "/tmp/uvd-bench"))
I2D_VERSION = "1.47.0"
I2D_VENV = BENCH_DIR / f"img2dataset-{I2D_VERSION}"


# --- img2dataset's venv -------------------------------------------------------------------------------
def python311() -> str:
    for cand in (
        "python3.11",
        os.path.expanduser("~/.pyenv/versions/3.11.7/bin/python"),
        "/root/.pyenv/versions/3.11.7/bin/python",
    ):
        path = shutil.which(cand) or (cand if os.path.exists(cand) else None)
        if path:
            return path
    found = sorted(Path(os.path.expanduser("~/.pyenv/versions")).glob("3.1[0-2]*/bin/python"))
    if found:
        return str(found[-1])
    sys.exit("bench-peers: img2dataset needs Python <= 3.12; install python3.11 (pyenv install 3.11)")


def ensure_img2dataset() -> Path:
    exe = I2D_VENV / "bin" / "img2dataset"
    if (I2D_VENV / ".ok").exists() and exe.exists():
        return exe
    print(f"[bench-peers] installing img2dataset=={I2D_VERSION} into {I2D_VENV} (once)", file=sys.stderr)
    subprocess.run([python311(), "-m", "venv", str(I2D_VENV)], check=True)
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    subprocess.run([str(I2D_VENV / "bin" / "pip"), "install", "-q", f"img2dataset=={I2D_VERSION}"], check=True, env=env)
    (I2D_VENV / ".ok").write_text("ok")
    return exe


# --- the corpus server (its own process) -----------------------------------------------------------
def _serve(bodies: list[bytes], port_out, stop) -> None:  # noqa: ANN001 - multiprocessing handles
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            kind, _, name = path.strip("/").partition("/")
            index = int(name.split(".")[0]) if name.split(".")[0].isdigit() else -1
            if kind == "img" and 0 <= index < len(bodies):
                status, body, ctype = 200, bodies[index], "image/jpeg"
            elif kind == "trunc" and index >= 0:
                full = bodies[index % len(bodies)]
                status, body, ctype = 200, full[: len(full) // 2], "image/jpeg"
            elif kind == "html":
                status, body, ctype = 200, b"<html><body>Not an image</body></html>", "text/html"
            else:
                status, body, ctype = 404, b"not found", "text/plain"
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

        def handle_error(self, request, client_address) -> None:
            pass

    httpd = Server(("127.0.0.1", 0), Handler)
    port_out.put(httpd.server_address[1])
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    stop.wait()
    httpd.shutdown()


class CorpusServer:
    def __init__(self, bodies: list[bytes]) -> None:
        ctx = multiprocessing.get_context("fork")
        self.port_q, self.stop = ctx.Queue(), ctx.Event()
        self.proc = ctx.Process(target=_serve, args=(bodies, self.port_q, self.stop), daemon=True)

    def __enter__(self) -> CorpusServer:
        self.proc.start()
        self.port = self.port_q.get(timeout=60)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when we return: connections are refused


def write_metadata(path: Path, port: int, n: int, distinct: int, bad: float, seed: int) -> dict:
    refused = closed_port()
    urls, kinds = [], {}
    for kind, j in url_plan(n, distinct, bad, seed):
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "img":
            urls.append(f"http://127.0.0.1:{port}/img/{j}.jpg?u={len(urls)}")
        elif kind == "refused":
            urls.append(f"http://127.0.0.1:{refused}/img/{j}.jpg")
        elif kind == "missing":
            urls.append(f"http://127.0.0.1:{port}/missing/{j}.jpg")
        else:
            urls.append(f"http://127.0.0.1:{port}/{kind}/{j}.jpg")
    texts = [f"a LAION-like caption {i}" for i in range(n)]
    pq.write_table(pa.table({"URL": urls, "TEXT": texts}), path, row_group_size=10_000)
    return kinds


# --- running a tool and watching its process tree -------------------------------------------------
def _tree_rss(root: int) -> int:
    """Sum of VmRSS (bytes) over root and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


def run_tool(cmd: list[str], env: dict, log: Path, timeout_s: float) -> dict:
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        peak, done = 0, threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss(proc.pid))
                done.wait(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        watcher.join()
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": peak / 2**20,
        "rc": proc.returncode,
        "load_before": load0,
        "load_after": os.getloadavg()[0],
    }


def uvd_cmd(meta: Path, out: Path, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvd.cli",
        "laion",
        "--input",
        str(meta),
        "--output",
        str(out),
        "--allow_private_addresses",
        "true",
        *extra,
    ]


def uvd_saved(out: Path) -> tuple[int, dict]:
    sentences = pq.read_table(out / "sentences").num_rows
    reasons: dict[str, int] = {}
    for r in pq.read_table(out / "failures").column("reason").to_pylist():
        reasons[r] = reasons.get(r, 0) + 1
    return sentences, reasons


def i2d_cmd(exe: Path, meta: Path, out: Path, processes: int, threads: int) -> list[str]:
    return [
        str(exe),
        "--url_list",
        str(meta),
        "--input_format",
        "parquet",
        "--url_col",
        "URL",
        "--caption_col",
        "TEXT",
        "--output_folder",
        str(out),
        "--output_format",
        "parquet",
        "--image_size",
        "256",
        "--resize_mode",
        "center_crop",
        "--processes_count",
        str(processes),
        "--thread_count",
        str(threads),
        "--timeout",
        "10",
        "--retries",
        "0",
        "--number_sample_per_shard",
        "100000",
        "--enable_wandb",
        "False",
        "--distributor",
        "multiprocessing",
    ]


def i2d_saved(out: Path) -> tuple[int, dict]:
    ok, reasons = 0, {}
    for stats in out.glob("*_stats.json"):
        data = json.loads(stats.read_text())
        ok += data.get("successes", 0)
        for k, v in (data.get("status_dict") or {}).items():
            reasons[k] = reasons.get(k, 0) + v
    return ok, reasons


def summarize(runs: list[dict]) -> dict:
    med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    return {
        "img_s": med("img_s"),
        "img_per_cpu_s": med("img_per_cpu_s"),
        "peak_rss_mb": med("peak_rss_mb"),
        "max_peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "saved": med("saved"),
        "wall_s": med("wall_s"),
    }


def side_by_side(args: argparse.Namespace) -> dict:
    exe = ensure_img2dataset()
    bodies = build_corpus(args.distinct, args.seed)
    stats = corpus_stats(bodies)
    cores = os.cpu_count() or 2
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1"}
    results: dict[str, list[dict]] = {"uvd": [], "img2dataset": []}
    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as tmp, CorpusServer(bodies) as server:
        meta = Path(tmp) / "meta.parquet"
        kinds = write_metadata(meta, server.port, args.urls, args.distinct, args.bad, args.seed)
        print(
            f"[bench-peers] corpus {stats}, {args.urls} URLs {kinds}, {cores} cores, server :{server.port}",
            file=sys.stderr,
        )
        for r in range(args.rounds):
            order = ["uvd", "img2dataset"] if r % 2 == 0 else ["img2dataset", "uvd"]
            for tool in order:
                out = Path(tmp) / f"{tool}-{r}"
                if tool == "uvd":
                    cmd = uvd_cmd(meta, out, args.uvd_args)
                else:
                    cmd = i2d_cmd(exe, meta, out, args.processes or cores, args.threads)
                res = run_tool(cmd, env, Path(tmp) / f"{tool}-{r}.log", args.timeout_s)
                if res["rc"] != 0:
                    print((Path(tmp) / f"{tool}-{r}.log").read_text()[-3000:], file=sys.stderr)
                    raise SystemExit(f"[bench-peers] {tool} exited {res['rc']}")
                saved, reasons = uvd_saved(out) if tool == "uvd" else i2d_saved(out)
                res.update(
                    saved=saved,
                    reasons=reasons,
                    img_s=saved / res["wall_s"],
                    img_per_cpu_s=saved / max(res["cpu_s"], 1e-9),
                )
                results[tool].append(res)
                print(
                    f"[bench-peers] round {r} {tool:11s} {saved} saved in {res['wall_s']:.1f} s: "
                    f"{res['img_s']:.0f} img/s, {res['img_per_cpu_s']:.0f} img/cpu-s, cpu {res['cpu_s']:.0f} s, "
                    f"peak RSS {res['peak_rss_mb']:.0f} MB, load {res['load_before']:.1f}->{res['load_after']:.1f}",
                    file=sys.stderr,
                )
                shutil.rmtree(out, ignore_errors=True)
    u, i = summarize(results["uvd"]), summarize(results["img2dataset"])
    report = {
        "corpus": stats,
        "urls": args.urls,
        "kinds": kinds,
        "cores": cores,
        "rounds": args.rounds,
        "uvd_args": args.uvd_args,
        "uvd": u,
        "img2dataset": i,
        "ratio_wall": u["img_s"] / i["img_s"],
        "ratio_cpu": u["img_per_cpu_s"] / i["img_per_cpu_s"],
        "ratio_rss": u["max_peak_rss_mb"] / i["max_peak_rss_mb"],
        "runs": results,
    }
    print(
        f"peers: uvd {u['img_s']:.0f} img/s ({u['img_per_cpu_s']:.0f}/cpu-s, peak {u['max_peak_rss_mb']:.0f} MB, "
        f"{u['saved']:.0f} saved) vs img2dataset {I2D_VERSION} {i['img_s']:.0f} img/s "
        f"({i['img_per_cpu_s']:.0f}/cpu-s, "
        f"peak {i['max_peak_rss_mb']:.0f} MB, {i['saved']:.0f} saved) -> {report['ratio_wall']:.2f}x wall, "
        f"{report['ratio_cpu']:.2f}x per CPU second, {report['ratio_rss']:.2f}x peak RSS "
        f"(medians of {args.rounds} interleaved rounds, {cores} cores)"
    )
    return report


def rss_scaling(args: argparse.Namespace, sizes: list[int]) -> dict:
    """uvd's peak RSS with N distinct images (N URLs), to see whether memory grows with the input.

    The corpus has small photos (0.1 MP median) so 16k of them build in a minute: the outputs, which
    are what the runner buffers, are 256x256 whatever the input size."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out_rows = {}
    for n in sizes:
        bodies = build_corpus(n, args.seed, median_mp=0.1)
        with tempfile.TemporaryDirectory(dir=BENCH_DIR) as tmp, CorpusServer(bodies) as server:
            meta = Path(tmp) / "meta.parquet"
            write_metadata(meta, server.port, n, n, 0.0, args.seed)
            res = run_tool(uvd_cmd(meta, Path(tmp) / "out", args.uvd_args), env, Path(tmp) / "log", args.timeout_s)
            saved, _ = uvd_saved(Path(tmp) / "out")
        out_rows[n] = {"peak_rss_mb": res["peak_rss_mb"], "img_s": saved / res["wall_s"], "saved": saved}
        print(
            f"rss-scaling: {n} distinct images: peak RSS {res['peak_rss_mb']:.0f} MB, "
            f"{saved / res['wall_s']:.0f} img/s ({' '.join(args.uvd_args) or 'defaults'})"
        )
    return out_rows


def quality(args: argparse.Namespace) -> dict:
    """image_format options on the corpus' 256x256 outputs: bytes, encode cost, PSNR vs the pixels."""
    import cv2

    from uvd.transforms.image import decode_png, encode_image, encode_png, psnr_db, to_square_rgb

    cv2.setNumThreads(1)
    pixels = [to_square_rgb(b)[0] for b in build_corpus(args.distinct, args.seed)[:300]]
    rows = {}
    options = [("png (zlib default, before)", lambda p: encode_png(p)), ("png (fast)", lambda p: encode_image(p))]
    options += [
        (f"jpeg q{q}" + " (default)" * (q == 95), (lambda q: lambda p: encode_image(p, "jpeg", q))(q)) for q in (90, 95)
    ]
    for name, fn in options:
        start = time.process_time()
        blobs = [fn(p) for p in pixels]
        cost_ms = (time.process_time() - start) / len(pixels) * 1e3
        decoded = [decode_png(b) for b in blobs]
        psnr = [psnr_db(p, d) for p, d in zip(pixels, decoded)]
        finite = [x for x in psnr if np.isfinite(x)]
        rows[name] = {
            "kb": float(np.mean([len(b) for b in blobs]) / 1024),
            "encode_ms": cost_ms,
            "psnr_db": float(np.median(finite)) if finite else float("inf"),
            "min_psnr_db": float(min(finite)) if finite else float("inf"),
        }
        print(
            f"quality: {name:28s} {rows[name]['kb']:6.1f} KB  {cost_ms:5.2f} ms/img  "
            f"PSNR median {rows[name]['psnr_db']:.1f} dB (min {rows[name]['min_psnr_db']:.1f})"
        )
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--urls", type=int, default=4000)
    parser.add_argument("--distinct", type=int, default=970)
    parser.add_argument("--bad", type=float, default=0.03, help="share of bad URLs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--processes", type=int, default=0, help="img2dataset processes (default: cores)")
    parser.add_argument("--threads", type=int, default=16, help="img2dataset threads per process")
    parser.add_argument("--timeout_s", type=float, default=900)
    parser.add_argument("--rss-scaling", default="", help="comma separated distinct-image counts (uvd only)")
    parser.add_argument("--quality", action="store_true", help="image_format bytes / cost / PSNR only")
    parser.add_argument("--json", default=str(BENCH_DIR / "bench_peers.json"))
    parser.add_argument("uvd_args", nargs="*", help="extra `uvd laion` flags after --, e.g. -- --image_format jpeg")
    args = parser.parse_args(argv)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    if args.quality:
        report = {"quality": quality(args)}
    elif args.rss_scaling:
        report = {"rss_scaling": rss_scaling(args, [int(x) for x in args.rss_scaling.split(",")])}
    else:
        report = side_by_side(args)
    Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    print(f"[bench-peers] details in {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
