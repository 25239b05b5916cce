"""Flags built from a Config dataclass (uvd.config.add_config_flags), as every stage and the trainer use them."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from dataclasses import dataclass, field

import pytest

from uvd.config import ConfigError, config_from_flags, config_parser
from uvd.registry import SOURCE_STAGES, STAGES


@dataclass
class Example:
    input: str  # where the inputs are
    strides: list[int] = field(default_factory=lambda: [10, 20])
    wrap: bool = True  # windows wrap around
    verbose: bool = False
    limit: float | None = 0.5  # none: no limit
    columns: dict = field(default_factory=dict)  # role -> column
    offline: bool = field(default=True, metadata={"negate": "online"})  # only the local cache
    name: str = field(default="x", metadata={"flag": "dataset_name"})
    adapters: list[dict] = field(default_factory=list)  # structured: from a manifest only

    def validate(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise ConfigError("limit: must be >= 0")


def parse(argv: list[str]) -> Example:
    return config_from_flags(Example, config_parser("t", "", Example).parse_args(argv), where="t")


def test_defaults_come_from_the_dataclass():
    assert parse(["--input", "a"]) == Example(input="a")


def test_types_lists_bools_optionals_dicts_and_renames():
    cfg = parse(
        [
            "--input",
            "a",
            "--strides",
            "1,2",
            "3",
            "--strides",
            "4",
            "--no_wrap",
            "--verbose",
            "--limit",
            "none",
            "--columns",
            "image=img",
            "label=y",
            "--online",
            "--dataset_name",
            "n",
        ]
    )
    assert cfg.strides == [1, 2, 3, 4] and cfg.wrap is False and cfg.verbose is True and cfg.limit is None
    assert cfg.columns == {"image": "img", "label": "y"} and cfg.offline is False and cfg.name == "n"
    assert parse(["--input", "a", "--wrap", "false", "--verbose", "yes"]).wrap is False


def test_help_comes_from_field_comments_and_structured_fields_have_no_flag():
    text = config_parser("t", "", Example).format_help()
    assert "where the inputs are" in text and "windows wrap around" in text
    assert "--adapters" not in text and "--no_wrap" in text


def test_required_fields_and_validate_errors():
    with pytest.raises(SystemExit):
        config_parser("t", "", Example).parse_args([])
    with pytest.raises(ConfigError, match="t.limit: must be >= 0"):
        parse(["--input", "a", "--limit", "-1"])


@pytest.mark.parametrize("stage", SOURCE_STAGES)
def test_every_source_stage_has_a_flag_per_config_field(stage):
    if stage == "pose":
        pytest.importorskip("mmpose")
    from uvd.core.stage import stage_parser

    module = importlib.import_module(STAGES[stage][0])
    spec = module.STAGE_SPEC
    parser = stage_parser(spec)
    dests = {a.dest for a in parser._actions}
    structured = {"adapters", "annotations"}  # lists of mappings / nested dicts: manifest-only
    missing = [f.name for f in dataclasses.fields(spec.config) if f.name not in dests | structured]
    assert not missing, f"{stage}: no flag for {missing}"
    assert isinstance(parser, argparse.ArgumentParser) and "--output" in parser.format_help()
