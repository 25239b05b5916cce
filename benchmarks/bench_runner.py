"""Which local Beam runner mode runs the LAION stage fastest here: seconds for the same small job.

The job: the embedded sample's rows repeated REPEAT times (absolute file: URLs, so no network),
through the whole `uvd laion` stage, on DirectRunner (FnApiRunner) in_memory, multi_threading
(2 workers) and multi_processing (2 workers). The lead picks uvd.core.options.DEFAULT_LOCAL_FLAGS from this.

    .venv/bin/python benchmarks/bench_runner.py
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from uvd.sources.laion import pipeline as laion  # noqa: E402
from uvd.sources.laion.downloader import file_url_path  # noqa: E402

REPEAT = 4
MODES = [
    ("in_memory", ["--direct_running_mode=in_memory", "--direct_num_workers=1"]),
    ("multi_threading", ["--direct_running_mode=multi_threading", "--direct_num_workers=2"]),
    ("multi_processing", ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]),
]


def job_input(folder: Path) -> Path:
    sample = Path(laion.SAMPLE_INPUT).resolve()
    rows = pq.read_table(sample).to_pylist()
    for row in rows:
        if row["URL"] and row["URL"].startswith("file:"):
            row["URL"] = "file://" + file_url_path(row["URL"], str(sample.parent))
    rows = [{**row, "URL": f"{row['URL']}#copy{i}" if row["URL"] else None} for i in range(REPEAT) for row in rows]
    path = folder / "meta.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=16)
    return path


def main() -> None:
    logging.basicConfig(level=logging.WARNING)  # keep Beam's INFO lines out of `make bench`
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        meta = job_input(Path(tmp))
        n = pq.read_table(meta).num_rows
        for name, flags in MODES:
            start = time.perf_counter()
            laion.run(["--input", str(meta), "--output", str(Path(tmp) / name), "--allowed_schemes", "file", *flags])
            results.append((name, time.perf_counter() - start))
    base = results[0][1]
    for name, seconds in results:
        print(
            f"runner {name}: {seconds:.1f} s for {n} rows ({n / seconds:.1f} rows/s) vs baseline in_memory "
            f"{base:.1f} s -> {base / seconds:.2f}x"
        )


if __name__ == "__main__":
    main()
