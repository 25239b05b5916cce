"""Trainer: config checks, schedule, resume == uninterrupted, DDP/FSDP == one process, no pipeline deps."""

from __future__ import annotations

import math
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from uvd.config import ConfigError
from uvd.model import checkpoint
from uvd.model.train import TrainConfig, load_config, lr_at, main, train

REPO = Path(__file__).resolve().parents[2]
# What forkserver children (the multi-process tests) find imported: everything a train() run touches.
PRELOAD = [
    "torch",
    "torch._dynamo",
    "torch.utils.data",
    "uvd.model.train",
    "uvd.model.evaluate",
    "matplotlib.pyplot",
    "tqdm",
    "tests.model.test_train",
]


def small(shard_dir: Path, out: Path, **kw) -> list[str]:
    args = {
        "train_data": shard_dir,
        "out_dir": out,
        "model": "debug",
        "seq_len": 64,
        "batch_size": 2,
        "grad_accum": 2,
        "max_steps": 6,
        "warmup_steps": 2,
        "lr": 0.003,
        "log_every": 1,
        "num_workers": 0,
        "eval_batches": 2,
        "tensorboard": False,
        "doc_mask": True,
        **kw,
    }
    return [f"--{k}={v}" for k, v in args.items()]


def test_config_rejects_unknown_and_bad_values(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("model: tiny\nlr: 1.5e-4\n")
    cfg = load_config(str(cfg_file), ["--max_steps=7", "--warmup_steps=2", "--batch_size", "3"])
    assert (cfg.model, cfg.lr, cfg.max_steps, cfg.batch_size) == ("tiny", 1.5e-4, 7, 3)
    with pytest.raises(ConfigError, match="lerning_rate: unknown option"):
        load_config(None, ["--lerning_rate=1"])
    with pytest.raises(ConfigError, match="model: unknown model"):
        load_config(None, ["--model=huge"])
    with pytest.raises(ConfigError, match="max_steps: expected int"):
        load_config(None, ["--max_steps=ten"])
    assert main(["--bogus=1"]) == 2


def test_sample_config_is_valid():
    cfg = load_config(str(REPO / "uvd/model/configs/sample.yaml"), [])
    assert cfg.model == "tiny"
    load_config(str(REPO / "uvd/model/configs/lvm_300m.yaml"), [])


def test_schedule_warmup_cosine_floor():
    cfg = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55)
    assert lr_at(110, cfg) == pytest.approx(0.1) and lr_at(500, cfg) == pytest.approx(0.1)
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 120))


def test_resume_equals_uninterrupted(shard_dir, tmp_path):
    full = train(load_config(None, small(shard_dir, tmp_path / "a")))
    part1 = train(load_config(None, small(shard_dir, tmp_path / "b", stop_step=3)))
    assert checkpoint.latest(tmp_path / "b").name == "step_00000003.pt"
    part2 = train(load_config(None, small(shard_dir, tmp_path / "b")))
    assert len(full) == 6 and len(part1) == 3 and len(part2) == 3
    assert part1 + part2 == pytest.approx(full, rel=1e-5, abs=1e-6)
    assert full[-1] < full[0] - 0.2 and math.isfinite(full[-1])  # it learns
    run = tmp_path / "b"
    assert not list(run.glob("*.tmp"))
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss,lr,grad_norm,tokens_per_s,mfu")
    assert len([r for r in rows[1:] if r.split(",")[1]]) == 6  # the resumed CSV continues, no duplicates
    assert (run / "loss.png").stat().st_size > 1000
    a, b = checkpoint.read(tmp_path / "a/step_00000006.pt"), checkpoint.read(run / "step_00000006.pt")
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key])


# --- DDP / FSDP on 2 CPU processes (gloo) vs one process on the same global batch ------------------
def _batches(steps: int, global_batch: int, seq: int = 32):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(steps):
        x = torch.randint(0, 300, (global_batch, seq + 1), generator=g)
        out.append(
            {"tokens": x[:, :-1], "targets": x[:, 1:], "doc_ids": torch.zeros(global_batch, seq, dtype=torch.long)}
        )
    return out


def _run(mode: str, rank: int, world: int, result_file: str | None) -> list[float]:
    from uvd.model.model import LVM, model_config
    from uvd.model.train import build_optimizer, parallelize, train_step

    torch.manual_seed(0)
    model = LVM(model_config("debug", max_seq_len=64))
    model = parallelize(model, mode, torch.device("cpu"))
    opt = build_optimizer(model, TrainConfig(lr=3e-3))
    losses = []
    for batch in _batches(3, 4):
        mine = {k: v[rank * 4 // world : (rank + 1) * 4 // world] for k, v in batch.items()}
        # two micro-batches per step: accumulation and the no_sync path are exercised too
        half = len(mine["tokens"]) // 2
        micro = [{k: v[:half] for k, v in mine.items()}, {k: v[half:] for k, v in mine.items()}]
        losses.append(train_step(model, opt, micro, device=torch.device("cpu"), amp_dtype="float32")[0])
    if result_file:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
        )

        sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if rank == 0:
            torch.save({"losses": losses, "params": sd}, result_file)
    return losses


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        for mode in ("ddp", "fsdp"):  # one pair of processes for both: starting them is the slow part
            _run(mode, rank, world, f"{out_dir}/{mode}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_ddp_and_fsdp_match_single_process(tmp_path):
    single = str(tmp_path / "single.pt")
    _run("none", 0, 1, single)
    multiprocessing.set_forkserver_preload(PRELOAD)  # see _spawn
    mp.start_processes(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, start_method="forkserver")
    a = torch.load(single)
    for mode in ("ddp", "fsdp"):
        b = torch.load(tmp_path / f"{mode}.pt")
        assert b["losses"] == pytest.approx(a["losses"], rel=1e-4), mode
        for key, value in a["params"].items():
            torch.testing.assert_close(b["params"][key], value, atol=2e-5, rtol=1e-4, msg=f"{mode} {key}")


# --- elastic resume: 2 ranks x 2 workers -> 1 x 1 and 3 x 1, through train() itself -------------------
def _train_worker(rank: int, world: int, init_file: str, args: list[str], result: str) -> None:
    import json

    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        losses = train(load_config(None, args))
        if rank == 0:
            Path(result).write_text(json.dumps(losses))
    finally:
        dist.destroy_process_group()


def _spawn(tmp_path: Path, world: int, args: list[str]) -> list[float]:
    import json
    import uuid

    result = tmp_path / f"losses-{uuid.uuid4().hex}.json"
    init = tmp_path / f"init-{uuid.uuid4().hex}"
    # forkserver with torch preloaded: children start in ~0.1 s instead of re-importing torch each (spawn), and
    # unlike a plain fork they do not inherit this process's autograd threads
    multiprocessing.set_forkserver_preload(PRELOAD)
    mp.start_processes(
        _train_worker, args=(world, str(init), args, str(result)), nprocs=world, start_method="forkserver"
    )
    return json.loads(result.read_text())


def _samples(run: Path) -> dict[int, list[tuple[int, int]]]:
    """step -> sorted (canonical window id, crc32 of the window) over every rank's samples CSV."""
    out: dict[int, list] = {}
    for f in run.glob("samples-rank*.csv"):
        for line in f.read_text().splitlines():
            step, sid, crc = map(int, line.split(","))
            out.setdefault(step, []).append((sid, crc))
    return {k: sorted(v) for k, v in sorted(out.items())}


@pytest.mark.slow
def test_elastic_resume_on_other_world_sizes_and_workers(shard_dir, tmp_path):
    """Saved at step 3 on 2 gloo ranks x 2 workers; resumed on 1 x 1 and on 3 x 1: same losses, same windows."""
    import shutil

    def args(out: Path, batch: int, workers: int, **kw) -> list[str]:  # global batch: 6 windows per step
        return small(
            shard_dir,
            out,
            batch_size=batch,
            grad_accum=1,
            num_workers=workers,
            log_samples=True,
            parallel="auto",
            eval_batches=1,
            **kw,
        )

    full = train(load_config(None, args(tmp_path / "a", 6, 0)))
    part1 = _spawn(tmp_path, 2, args(tmp_path / "b", 3, 2, stop_step=3))
    shutil.copytree(tmp_path / "b", tmp_path / "c")
    on_one = train(load_config(None, args(tmp_path / "b", 6, 1)))
    on_three = _spawn(tmp_path, 3, args(tmp_path / "c", 2, 1))
    assert len(full) == 6 and len(part1) == 3 and len(on_one) == len(on_three) == 3
    assert part1 + on_one == pytest.approx(full, rel=2e-5)
    assert part1 + on_three == pytest.approx(full, rel=2e-5)
    reference = _samples(tmp_path / "a")
    assert sorted(reference) == list(range(6)) and all(len(v) == 6 for v in reference.values())
    assert _samples(tmp_path / "b") == reference
    assert _samples(tmp_path / "c") == reference
    with pytest.raises(ConfigError, match="global batch"):  # another global batch cannot resume exactly
        train(load_config(None, args(tmp_path / "c", 4, 0, max_steps=7)))


def test_trainer_imports_without_pipeline_dependencies():
    code = (
        "import sys\n"
        "for name in ('apache_beam', 'cv2', 'pyrender', 'trimesh', 'decord', 'av', 'OpenGL'):\n"
        "    sys.modules[name] = None\n"
        "import torch\n"
        "import uvd.model.train, uvd.model.evaluate, uvd.model.generate, uvd.model.data, uvd.model.checkpoint\n"
        "import uvd.model.hf, uvd.model.sequential, uvd.devices\n"
        "bad = [m for m in sys.modules if m.startswith(('uvd.core', 'uvd.assembly', 'uvd.sources', 'uvd.tokenize'))]\n"
        "assert not bad, bad\n"
        "from uvd.model.model import LVM, model_config\n"
        "m = LVM(model_config('debug', max_seq_len=16))\n"
        "print(m(torch.zeros(1, 4, dtype=torch.long)).shape)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert "torch.Size([1, 4, 8292])" in out.stdout


def test_init_from_a_hugging_face_folder_fine_tunes_those_weights(shard_dir, tmp_path):
    """--init_from loads the HF model: the first step's loss is that model's loss on the first global batch."""
    from uvd.model.data import ShardLoader
    from uvd.model.hf import export_hf
    from uvd.model.model import LVM, model_config

    torch.manual_seed(5)
    source = LVM(model_config("debug", max_seq_len=4096)).eval()
    folder = export_hf(source, tmp_path / "hf")
    losses = train(
        load_config(None, small(shard_dir, tmp_path / "ft", init_from=str(folder), max_steps=3, model="not-a-size"))
    )
    loader = ShardLoader(shard_dir, 64, 2, split="train", grad_accum=2, num_workers=0)
    it = iter(loader)
    with torch.no_grad():
        want = (
            sum(source(b["tokens"], targets=b["targets"], doc_ids=b["doc_ids"]).item() for b in (next(it), next(it)))
            / 2
        )
    assert losses[0] == pytest.approx(want, rel=1e-5)
    assert losses[-1] < losses[0]  # and it trains
    ckpt = checkpoint.read(tmp_path / "ft/step_00000003.pt")
    assert ckpt["model_config"]["dim"] == 64 and ckpt["config"]["init_from"] == str(folder)
