"""Every stage CLI: a mistake exits 2 with the field and the fix before any work, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from uvd.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "uvd" / "sample"


def test_misspelled_flag_is_rejected_with_the_closest_name(capsys, tmp_path):
    code = main(["video", "--input", str(SAMPLE / "videos"), "--output", str(tmp_path), "--clips_per_vidoe", "3"])
    err = capsys.readouterr().err
    assert code == 2 and "--clips_per_video" in err and "Traceback" not in err
    assert not (tmp_path / "images").exists()  # nothing ran


def test_beam_flags_still_pass_through(capsys, tmp_path):
    from uvd.core.options import check_beam_flags

    check_beam_flags(["--runner=DirectRunner", "--direct_num_workers", "2", "--job_endpoint=embed"], [])
    with pytest.raises(Exception, match="did you mean --direct_num_workers"):
        check_beam_flags(["--direct_num_worker=2"], [])


@pytest.mark.parametrize("stage", ["video", "imagenet", "objaverse", "annotations", "laion"])
def test_a_missing_input_exits_2_before_any_work(stage, capsys, tmp_path):
    code = main([stage, "--input", str(tmp_path / "no" / "such"), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and str(tmp_path / "no" / "such") in err and "Traceback" not in err
    assert f"{stage}.input" in err or stage == "annotations"  # annotations first misses <input>/adapters.yaml
    assert not (tmp_path / "out").exists()


def test_a_bad_value_exits_2_without_a_traceback_in_a_real_process(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "uvd.cli",
            "imagenet",
            "--input",
            str(SAMPLE / "imagenet"),
            "--output",
            str(tmp_path),
            "--resize",
            "stretch",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "resize" in proc.stderr and "Traceback" not in proc.stderr
    assert "apitools" not in proc.stderr  # Beam's import-time warning is silenced


def test_dataset_check_rejects_a_missing_tokenizer_checkpoint(capsys, tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(f"""
name: t
tokenizer: {{checkpoint: {tmp_path / "no_such_vqgan"}}}
sources:
  photos: {{stage: imagenet, input: {SAMPLE / "imagenet"}, weight: 1.0}}
""")
    code = main(["dataset", "--manifest", str(manifest), "--output", str(tmp_path / "out"), "--check"])
    err = capsys.readouterr().err
    assert code == 2 and "checkpoint" in err and "no_such_vqgan" in err and "Traceback" not in err
