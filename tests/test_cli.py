"""`uvd` lists every stage, and each registered stage module exists and has run(argv)."""

import importlib
import importlib.util
import subprocess
import sys

import pytest

from uvd.cli import main
from uvd.registry import STAGES


def test_help_lists_every_stage(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in STAGES:
        assert f"  {name} " in out


def test_unknown_stage_is_a_clear_error(capsys):
    assert main(["laoin"]) == 2
    assert "unknown stage 'laoin'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_module_has_run(name):
    module_name = STAGES[name][0]
    if importlib.util.find_spec(module_name.rsplit(".", 1)[0]) is None or importlib.util.find_spec(module_name) is None:
        pytest.fail(f"stage {name}: module {module_name} does not exist")
    if name == "pose" and importlib.util.find_spec("mmpose") is None:
        pytest.skip("pose needs the uvd[pose] extra")
    assert callable(importlib.import_module(module_name).run)


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "uvd.cli", "--help"], capture_output=True, text=True, check=True)
    assert "stages:" in out.stdout
