"""Hugging Face classification rows per second on one core: uvd hf's row path vs the datasets library's.

Each row: an Image cell -> the 256x256 image row (resize shorter side + centre crop, PNG, content
id) with its class, as the stage emits it.
uvd: the shard's record batches read with pyarrow (image bytes left encoded), JPEGs decoded at
reduced DCT scale down to 256 px (uvd.transforms.image), one resize.
Baseline: iterate `datasets.load_from_disk(...)` with the Image feature decoding (PIL at full
resolution, as `for ex in ds: ex["image"]`), then the same resize, PNG and id.
Inputs: the sample photos upscaled to 1024 px on the long side (JPEG q 90; ImageNet-21k, Places
and LAION-style hub sets are often this size or larger), 5 labels, in a temp save_to_disk folder.

    .venv/bin/python benchmarks/bench_hf.py
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from uvd.schema import image_id_for  # noqa: E402
from uvd.sources.hf import mappings, reader  # noqa: E402
from uvd.sources.hf import pipeline as hf  # noqa: E402
from uvd.transforms.image import encode_png, resize_crop  # noqa: E402

SECONDS = 8.0
LONG_SIDE = 1024


def make_dataset(folder: Path) -> str:
    import datasets

    photos = sorted((ROOT / "uvd" / "sample" / "images").glob("*.jpg"))
    cells, labels = [], []
    for i, path in enumerate(photos):
        im = Image.open(path).convert("RGB")
        s = LONG_SIDE / max(im.size)
        im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.BICUBIC)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=90)
        cells.append({"bytes": buf.getvalue(), "path": path.name})
        labels.append(i % 5)
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=[f"c{i}" for i in range(5)])}
    )
    ds = datasets.Dataset.from_dict({"image": cells, "label": labels}, features=features)
    ds.save_to_disk(str(folder / "ds"), num_shards=2)
    return str(folder / "ds")


def timed(fn) -> float:
    """Rows per CPU second of fn() (which returns the rows it did), repeated for SECONDS of wall time.

    CPU time of the process (all its threads), so the figure is per core and holds on a busy machine.
    """
    rows, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < SECONDS:
        rows += fn()
    return rows / (time.process_time() - cpu)


def main() -> None:
    import datasets

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_dataset(Path(tmp))
        cfg = hf.Config(input=path)
        layout, roles = cfg.resolve()
        read = hf.ReadRows(cfg, roles)
        process = hf.ProcessRow(cfg, roles, mappings.class_names(layout.features, "label"))

        def uvd_pass() -> int:
            n = 0
            for shard in layout.shards:
                for item in read(shard):
                    n += sum(1 for _ in process(item))
            return n

        ds = datasets.load_from_disk(path)
        names = ds.features["label"].names

        def baseline_pass() -> int:
            n = 0
            for ex in ds:
                pixels = resize_crop(np.asarray(ex["image"].convert("RGB")), 256)
                row = {"image_id": image_id_for(pixels), "image": encode_png(pixels), "class": names[ex["label"]]}
                n += bool(row)
            return n

        assert uvd_pass() == baseline_pass() == len(ds)
        assert reader.list_shards(path).format == "disk"
        ours, base = timed(uvd_pass), timed(baseline_pass)
    print(
        f"hf classification rows: {ours:.1f} rows/s/core vs baseline {base:.1f} rows/s/core "
        f"(datasets Image decode + same resize) -> {ours / base:.2f}x"
    )


if __name__ == "__main__":
    main()
