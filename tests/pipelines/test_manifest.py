"""Manifests: the shipped ones load; bad ones fail on load with the field and the fix named."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from uvd.assembly import manifest as M
from uvd.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _good(tmp_path: Path) -> dict:
    (tmp_path / "data.parquet").write_bytes(b"")
    return {"name": "t", "sources": {"laion": {"stage": "laion", "input": str(tmp_path / "data.parquet"), "weight": 1}}}


def _error(data: dict, tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        M.parse(data, base=tmp_path)
    return str(info.value)


def test_shipped_manifests_load():
    sample = M.load(ROOT / "manifests" / "sample.yaml")
    assert sample.weights_by == "sentences" and len(sample.entries) >= 3
    assert all(Path(e.input).exists() for e in sample.entries.values())  # relative to manifests/
    uvdv1 = M.load(ROOT / "manifests" / "uvdv1.yaml")
    assert uvdv1.weights_by == "tokens"
    kinds = {
        "single": ["laion"],
        "sequences": ["video", "objaverse", "imagenet"],
        "annotated": ["annotated_images", "pose", "pseudo_labels"],
        "annotated_video": ["annotated_video"],
    }
    shares = {k: sum(uvdv1.entries[n].weight for n in names) for k, names in kinds.items()}
    # the paper's shares, as given (they add up to 99.95%; weights are normalised on use)
    assert {k: round(v, 2) for k, v in shares.items()} == {
        "single": 88.5,
        "sequences": 4.24,
        "annotated": 7.15,
        "annotated_video": 0.06,
    }
    assert sample.hash != uvdv1.hash and len(sample.hash) == 32


def test_sample_stage_options_check_against_each_stage_config():
    sample = M.load(ROOT / "manifests" / "sample.yaml")
    modules = M.check_stage_options(sample)
    assert set(modules) == set(sample.entries)
    assert all(hasattr(m, "source_transform") for m in modules.values())


def test_defaults_and_relative_inputs(tmp_path):
    data = _good(tmp_path)
    data["sources"]["laion"]["input"] = "data.parquet"
    m = M.parse(data, base=tmp_path)
    assert m.entries["laion"].input == str(tmp_path / "data.parquet")
    assert m.seed == 0 and m.total is None and m.tokenizer_spec.checkpoint == "default"
    assert m.stage_config("laion") == {"input": str(tmp_path / "data.parquet")}


@pytest.mark.parametrize(
    "edit, field, words",
    [
        (lambda d: d["sources"]["laion"].update(stage="lion"), "sources.laion.stage", "choose one of"),
        (lambda d: d["sources"]["laion"].update(stage="tokenize"), "sources.laion.stage", "unknown source stage"),
        (lambda d: d["sources"]["laion"].update(weight=0), "sources.laion.weight", "positive"),
        (lambda d: d["sources"]["laion"].update(weight=-2.5), "sources.laion.weight", "positive"),
        (lambda d: d["sources"]["laion"].update(weight="1"), "sources.laion.weight", "expected float"),
        (lambda d: d["sources"]["laion"].pop("input"), "sources.laion.input", "add `input: ...`"),
        (lambda d: d["sources"]["laion"].update(input="nope/*.parquet"), "sources.laion.input", "nothing matches"),
        (lambda d: d["sources"]["laion"].update(wieght=1), "sources.laion.wieght", "unknown option"),
        (lambda d: d.update(weights_by="images"), "weights_by", "sentences, tokens"),
        (lambda d: d.update(validation_fraction=1.5), "validation_fraction", "[0, 1)"),
        (lambda d: d.update(sources={}), "sources", "at least one entry"),
        (lambda d: d.pop("sources"), "sources", "required option is missing"),
        (lambda d: d.update(tokenizer={"batch_size": 0}), "tokenizer.batch_size", ">= 1"),
        (
            lambda d: d.update(shards={"target_shard_mb": 1, "row_group_mb": 2}),
            "shards.row_group_mb",
            "target_shard_mb",
        ),
    ],
)
def test_bad_manifests_name_the_field_and_the_fix(tmp_path, edit, field, words):
    data = copy.deepcopy(_good(tmp_path))
    edit(data)
    message = _error(data, tmp_path)
    assert message.startswith(field + ":") and words in message, message


def test_stage_options_are_checked_by_the_stage(tmp_path):
    data = _good(tmp_path)
    data["sources"]["laion"]["options"] = {"min_sidee": 3}
    m = M.parse(data, base=tmp_path)
    with pytest.raises(ConfigError, match=r"^sources\.laion\.options\.min_sidee: unknown option"):
        M.check_stage_options(m)


def test_load_reports_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        M.load(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        M.load(bad)
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump({**_good(tmp_path), "seed": 3}))
    assert M.load(ok).seed == 3 and M.load(ok).text == ok.read_text()


def test_uvd_dataset_reports_a_bad_manifest_without_a_traceback(tmp_path, capsys):
    from uvd.assembly import dataset

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"name": "x", "sources": {"a": {"stage": "nope", "input": str(tmp_path), "weight": 1}}})
    )
    assert dataset.run(["--manifest", str(bad), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "sources.a.stage: unknown source stage 'nope'" in err
    assert not (tmp_path / "out").exists()


def test_uvdv1_tokenizer_options_reach_the_gpu_step():
    """The manifest's tokenizer block (accelerator hint, compile) is what the tokenize step gets."""
    from uvd.assembly.dataset import real_tokenizer

    spec = M.load(ROOT / "manifests" / "uvdv1.yaml").tokenizer_spec
    assert spec.accelerator and spec.accelerator.startswith("type:nvidia-")
    step = real_tokenizer("unused-checkpoint", spec.batch_size, **spec.handler_options())
    assert step.handler.accelerator == spec.accelerator and step.handler.compile is spec.compile


def test_tokenizer_precision_is_checked():
    with pytest.raises(ConfigError, match="tokenizer.precision: must be auto, fp32 or bf16"):
        M.parse(
            {
                "name": "x",
                "sources": {"a": {"stage": "laion", "input": ".", "weight": 1}},
                "tokenizer": {"precision": "fp16"},
            },
            text="",
            base=ROOT,
        )


def test_one_input_spelled_two_ways_resolves_to_one_path(tmp_path):
    """Work units and remix snapshots key on the resolved input: `../x` and `/abs/m/../x` are one input."""
    from uvd.assembly.manifest import resolve_input

    spelled = str(tmp_path / "m" / ".." / "data" / "x")
    expected = str(tmp_path / "data" / "x")
    assert resolve_input("../data/x", tmp_path / "m") == resolve_input(spelled, tmp_path) == expected
    assert resolve_input("gs://b/../x", tmp_path) == "gs://b/../x"
