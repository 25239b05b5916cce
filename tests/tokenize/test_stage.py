"""The Beam side: handler, TokenizeImages (== calling the model directly), `uvd tokenize`, `uvd decode`."""

from __future__ import annotations

import io

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that
from PIL import Image

import uvd.tokenize as tok
from uvd.schema import IMAGES_SCHEMA, SHARD_SCHEMA, image_id_for
from uvd.tokenize import detokenize as decode_stage
from uvd.tokenize import stage
from uvd.tokenize.handler import VQGANModelHandler, pad_batch, worker_checkpoint
from uvd.tokenize.train_small import SAMPLE_IMAGES, fit_256

ACCELERATOR = "type:nvidia-l4;count:1;install-nvidia-driver"


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.stack([fit_256(Image.open(p)) for p in sorted(SAMPLE_IMAGES.glob("*.jpg"))[:3]])


@pytest.fixture(scope="module")
def expected(pixels) -> dict[str, np.ndarray]:
    # One image per forward pass here and in the stage below (batch_size=1): CPU conv kernels differ
    # by batch size, so only equal batching makes the comparison exact.
    model = tok.load_vqgan(tok.DEFAULT_CHECKPOINT)
    return {image_id_for(p): ids for p, ids in zip(pixels, tok.encode(model, pixels, batch_size=1))}


def image_rows(pixels: np.ndarray) -> list[dict]:
    rows = [
        {"image_id": image_id_for(p), "image": png(p), "source": "test", "provenance": f'{{"i": {i}}}'}
        for i, p in enumerate(pixels)
    ]
    dup = {**rows[0], "provenance": '{"i": 99}'}  # the same image reached twice
    bad = [
        {"image_id": "corrupt", "image": b"\x89PNG\r\n\x1a\nnot really", "source": "test", "provenance": ""},
        {"image_id": "small", "image": png(pixels[0][:128, :128]), "source": "test", "provenance": ""},
        {"image_id": "", "image": png(pixels[1]), "source": "test", "provenance": ""},
    ]
    return rows + [dup] + bad


def test_handler_batches_like_encode(pixels, expected):
    handler = VQGANModelHandler(tok.DEFAULT_CHECKPOINT, device="cpu", max_batch_size=8)
    model = handler.load_model()
    out = [o for p in pixels for o in handler.run_inference([p], model)]
    assert [o.dtype for o in out] == [np.uint16] * 3
    assert all(np.array_equal(o, expected[image_id_for(p)]) for o, p in zip(out, pixels))
    batched = np.stack(list(handler.run_inference(list(pixels), model)))  # one forward pass of 3
    assert (batched == np.stack(out)).mean() >= 0.99
    assert handler.batch_elements_kwargs() == {"min_batch_size": 1, "max_batch_size": 8}
    assert handler.get_resource_hints() == {}
    assert VQGANModelHandler("x", accelerator=ACCELERATOR).get_resource_hints() == {"accelerator": ACCELERATOR}
    with pytest.raises(ValueError, match="min_batch_size"):
        VQGANModelHandler("x", min_batch_size=9, max_batch_size=8)


def test_pad_batch():
    images = np.ones((3, 4, 4, 3), np.uint8)
    padded = pad_batch(images, 5)
    assert padded.shape == (5, 4, 4, 3) and np.array_equal(padded[:3], images) and not padded[3:].any()
    assert pad_batch(images, 2) is images


def test_default_checkpoint_resolves_on_the_worker(tmp_path):
    launcher_path = "/somewhere/else/site-packages/uvd/tokenize/assets/vqgan-small"
    assert worker_checkpoint(launcher_path) == tok.DEFAULT_CHECKPOINT
    assert worker_checkpoint("default") == tok.DEFAULT_CHECKPOINT
    assert worker_checkpoint("openMUSE/vqgan-f16-8192-laion") == "openMUSE/vqgan-f16-8192-laion"
    assert worker_checkpoint(str(tmp_path)) == str(tmp_path)


def test_only_the_inference_step_gets_the_accelerator_hint():
    p = beam.Pipeline()
    _ = p | beam.Create([{"image_id": "a", "image": b"x"}]) | stage.TokenizeImages(accelerator=ACCELERATOR)
    proto = p.to_runner_api()
    hinted_envs = {k for k, env in proto.components.environments.items() if env.resource_hints}
    hinted = [t.unique_name for t in proto.components.transforms.values() if t.environment_id in hinted_envs]
    assert hinted == ["TokenizeImages/VQGAN/BeamML_RunInference"]


def test_tokenize_images_equals_the_model_once_per_image(pixels, expected):
    def check_tokens(rows):
        got = {r["image_id"]: r["tokens"] for r in rows}
        assert len(rows) == len(got) == 3  # the duplicate was tokenized once
        assert got.keys() == expected.keys()
        for image_id, ids in got.items():
            assert ids.dtype == np.uint16 and np.array_equal(ids, expected[image_id])

    def check_failures(rows):
        assert sorted((r["record_id"], r["reason"]) for r in rows) == [
            ("?", "missing_image_id"),
            ("corrupt", "bad_image"),
            ("small", "wrong_size"),
        ]
        assert {r["stage"] for r in rows} == {"tokenize"}

    with beam.Pipeline(runner="DirectRunner") as p:
        out = p | beam.Create(image_rows(pixels)) | stage.TokenizeImages(tok.DEFAULT_CHECKPOINT, batch_size=1)
        assert_that(out.tokens, check_tokens, label="Tokens")
        assert_that(out.failures, check_failures, label="Failures")


@pytest.mark.slow
def test_cli_tokenize_then_decode(tmp_path, pixels, expected):
    images = tmp_path / "in" / "images"
    images.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(image_rows(pixels), schema=IMAGES_SCHEMA), images / "part-00000.parquet")
    flags = ["--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
    assert (
        stage.run(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--batch_size", "1", *flags])
        == 0
    )

    tokens = pq.read_table(sorted((tmp_path / "out" / "tokens").glob("part*.parquet"))).to_pylist()
    assert {r["image_id"]: r["tokens"] for r in tokens} == {k: v.tolist() for k, v in expected.items()}
    failures = pq.read_table(sorted((tmp_path / "out" / "failures").glob("part*.parquet"))).to_pylist()
    assert sorted(r["reason"] for r in failures) == ["bad_image", "missing_image_id", "wrong_size"]

    # tokens table -> one PNG per image, close to the model's own decode
    assert decode_stage.run(["--input", str(tmp_path / "out"), "--output", str(tmp_path / "png")]) == 0
    model = tok.load_vqgan(tok.DEFAULT_CHECKPOINT)
    for image_id, ids in expected.items():
        written = np.asarray(Image.open(tmp_path / "png" / f"{image_id}.png"))
        assert np.array_equal(written, tok.decode(model, ids[None])[0])


def test_decode_shards_into_strips(tmp_path, expected):
    ids = list(expected.values())
    rows = [
        {
            "sentence_id": "s1",
            "source": "test",
            "kind": "sequence",
            "num_images": 2,
            "tokens": np.concatenate(ids[:2]).tolist(),
        },
        {"sentence_id": "s2", "source": "test", "kind": "single", "num_images": 1, "tokens": ids[2].tolist()},
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=SHARD_SCHEMA), tmp_path / "shard-00000.parquet")
    written = decode_stage.decode_to_pngs(str(tmp_path), str(tmp_path / "png"), limit=1)
    assert [p.name for p in written] == ["s1.png"]
    assert np.asarray(Image.open(written[0])).shape == (256, 512, 3)
    pq.write_table(pa.table({"x": [1]}), tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="neither a tokens table nor a shard"):
        decode_stage.decode_to_pngs(str(tmp_path / "other.parquet"), str(tmp_path / "png2"))
