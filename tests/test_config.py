"""Config errors name the field and the fix."""

from dataclasses import dataclass, field

import pytest

from uvd.config import ConfigError, from_dict, require


@dataclass
class Example:
    input: str
    min_side: int = 64
    ratio: float = 3.0
    strides: list[int] = field(default_factory=lambda: [10, 20, 30])
    note: str | None = None

    def validate(self) -> None:
        require(self.min_side > 0, "min_side", "must be positive, e.g. 64")


def test_valid_config_builds():
    cfg = from_dict(Example, {"input": "x.parquet", "ratio": 2, "note": None})
    assert cfg.ratio == 2 and cfg.strides == [10, 20, 30]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"input": "x", "min_sid": 3}, r"src\.min_sid: unknown option; allowed options are: .*min_side"),
        ({"input": "x", "min_side": "64"}, r"src\.min_side: expected int, got str"),
        ({"input": "x", "min_side": True}, r"src\.min_side: expected int"),
        ({}, r"src\.input: required option is missing"),
        ({"input": "x", "min_side": -1}, r"src\.min_side: must be positive"),
        ({"input": "x", "strides": 10}, r"src\.strides: expected"),
    ],
)
def test_errors_name_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Example, data, where="src")
