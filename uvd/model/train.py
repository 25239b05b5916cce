"""`uvd-train --config uvd/model/configs/sample.yaml [--key=value ...]`: train the LVM on shards.

One process, or many under torchrun (`torchrun --nproc_per_node=8 -m uvd.model.train --config ...`)
with DDP (`parallel: ddp`) or FSDP2 `fully_shard` (`parallel: fsdp`). The batch per optimizer step
is batch_size x grad_accum x world_size windows of seq_len tokens.

Schedule: linear warmup to `lr`, cosine to `min_lr` at `max_steps` (official LVM: 1.5e-4 -> 3e-5,
warmup 8000), AdamW (0.9, 0.95), weight decay 0.1 on matrices only, gradient clipping.

Resume: with `resume: auto` a run restarts from the newest checkpoint in out_dir, restoring model,
optimizer, step (the schedule is a pure function of it), loader position and RNG, so the losses
continue exactly as if the run had not stopped, also on another number of ranks or loader workers
(elastic: keep the global batch, batch_size x grad_accum x world_size; uvd.model.data).

Fine-tuning: `init_from` starts from a Hugging Face Llama checkpoint (folder or hub id, e.g. the
official LVM weights; uvd.model.hf) or a uvd `.pt` checkpoint: its weights and architecture, a
fresh optimizer and schedule. The data then uses that model's BOS/EOS convention.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
import zlib
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from uvd import schema
from uvd.config import ConfigError, config_parser, flag_overrides, from_dict, require
from uvd.devices import PRECISIONS, autocast, pick_device
from uvd.model import checkpoint
from uvd.model.data import ShardLoader
from uvd.model.logger import RunLogger, peak_flops
from uvd.model.model import ATTN_IMPLS, LVM, MODEL_NAMES, ModelConfig, flops_per_token, model_config


@dataclass
class TrainConfig:
    model: str = "tiny"  # a name from uvd.model.model (debug, tiny, 100m ... 7b)
    train_data: str = "out/sample"  # shard dir / glob / file, local or fsspec URL
    train_split: str = "train"
    val_data: str = ""  # default: train_data
    val_split: str = "validation"  # no matching shards -> no validation loss
    out_dir: str = "runs/sample"
    seq_len: int = 4096
    batch_size: int = 8  # windows per micro-batch per rank
    grad_accum: int = 1
    max_steps: int = 1000
    stop_step: int = 0  # stop early here (a time-sliced job); 0 = max_steps
    lr: float = 1.5e-4
    min_lr: float = 3e-5
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    dtype: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | bfloat16 | float32
    compile: bool = False
    doc_mask: bool = False  # attention reset at sentence boundaries
    attn_impl: str = "auto"  # document mask: auto (flex on CUDA, segments on CPU) | flex | segments | sdpa
    init_from: str = ""  # fine-tune: HF Llama folder / hub id, or a uvd .pt (model is then ignored)
    data_partitions: int = 0  # canonical data partitions; 0 = the global batch in windows
    log_samples: bool = False  # write samples-rank<r>.csv: step, canonical window ids, crc32s
    parallel: str = "auto"  # auto (ddp when world > 1) | none | ddp | fsdp
    device: str = "auto"
    seed: int = 0
    num_workers: int = 1  # loader workers per rank (0: in the training process)
    shuffle_rowgroups: int = 8
    log_every: int = 10
    eval_every: int = 0  # 0: only at the end
    eval_batches: int = 20
    ckpt_every: int = 0  # 0: only at the end
    keep_checkpoints: int = 2
    resume: str = "auto"  # auto | none | a checkpoint path
    peak_tflops: float = 0.0  # MFU denominator override; 0 = known GPUs only
    tensorboard: bool = True

    def validate(self) -> None:
        require(
            bool(self.init_from) or self.model in MODEL_NAMES,
            "model",
            f"unknown model {self.model!r}; choose one of {', '.join(MODEL_NAMES)}",
        )
        require(self.seq_len >= 2, "seq_len", "must be >= 2")
        require(self.batch_size >= 1 and self.grad_accum >= 1, "batch_size", "batch_size and grad_accum must be >= 1")
        require(self.max_steps >= 1, "max_steps", "must be >= 1")
        require(0 <= self.stop_step <= self.max_steps, "stop_step", "must be in 0..max_steps")
        require(0 <= self.min_lr <= self.lr, "min_lr", "must be in 0..lr")
        require(0 <= self.warmup_steps <= self.max_steps, "warmup_steps", "must be in 0..max_steps")
        require(self.dtype in PRECISIONS, "dtype", " | ".join(PRECISIONS))
        require(self.attn_impl in ATTN_IMPLS, "attn_impl", " | ".join(ATTN_IMPLS))
        require(self.data_partitions >= 0, "data_partitions", "must be >= 0 (0: the global batch)")
        require(self.parallel in ("auto", "none", "ddp", "fsdp"), "parallel", "auto | none | ddp | fsdp")
        require(self.num_workers >= 0, "num_workers", "must be >= 0")
        require(self.log_every >= 1, "log_every", "must be >= 1")


def load_config(path: str | None, overrides: list[str]) -> TrainConfig:
    """YAML file, then `--key=value` (or `--key value`) flags built from TrainConfig; unknown keys are errors."""
    import yaml

    data: dict = {}
    if path:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    # YAML 1.1 reads `1.5e-4` (no dot before the e) as a string: accept it for float fields.
    floats = {f.name for f in dataclasses.fields(TrainConfig) if f.type in (float, "float")}
    for key in floats & set(data):
        if isinstance(data[key], str):
            try:
                data[key] = float(data[key])
            except ValueError:
                pass
    return from_dict(TrainConfig, {**data, **flag_overrides(TrainConfig, overrides, "uvd-train")}, where="train")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup over warmup_steps, then cosine from lr to min_lr at max_steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


# --- distributed + model setup --------------------------------------------------------------------
def init_distributed(device_pref: str = "auto") -> tuple[int, int, torch.device]:
    """(rank, world_size, device); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = pick_device(device_pref, int(os.environ.get("LOCAL_RANK", "0")))
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return rank, world, device


def parallelize(model: torch.nn.Module, mode: str, device: torch.device, compile_blocks: bool = False):
    """Wrap for DDP or FSDP2 (`fully_shard` per block, then the root); optionally compile blocks."""
    if compile_blocks:
        for block in model.layers:  # type: ignore[union-attr]  # LVM.layers is a ModuleList
            block.compile()
    if mode == "ddp":
        return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    if mode == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in model.layers:  # type: ignore[union-attr]
            fully_shard(block)
        fully_shard(model)
    return model


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not norms), fused on CUDA."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = next(model.parameters()).device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused or None)


def train_step(
    model, optimizer, micro_batches: list[dict], *, device, amp_dtype="auto", grad_clip=1.0, doc_mask=False
) -> tuple[float, float]:
    """One optimizer step over the micro-batches (gradient accumulation); (mean loss, grad norm).

    Under DDP gradients sync only on the last micro-batch; the returned loss is the mean over
    micro-batches and ranks, i.e. the loss of the global batch.
    """
    n = len(micro_batches)
    total = torch.zeros((), device=device)
    for i, mb in enumerate(micro_batches):
        sync = i == n - 1
        ctx = model.no_sync() if isinstance(model, DDP) and not sync else nullcontext()
        if hasattr(model, "set_requires_gradient_sync"):  # FSDP2
            model.set_requires_gradient_sync(sync)
        tokens = mb["tokens"].to(device, non_blocking=True)
        targets = mb["targets"].to(device, non_blocking=True)
        doc_ids = mb["doc_ids"].to(device, non_blocking=True) if doc_mask else None
        with ctx, autocast(device, amp_dtype):
            loss = model(tokens, targets=targets, doc_ids=doc_ids)
        (loss / n).backward()
        total += loss.detach()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip > 0 else float("inf"))
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    loss = total / n
    if dist.is_initialized():
        dist.all_reduce(loss, op=dist.ReduceOp.AVG)
    return loss.item(), float(norm)


# --- the run --------------------------------------------------------------------------------------
def train(cfg: TrainConfig) -> list[float]:
    """Run (or resume) training; returns this process's per-step losses (for tests)."""
    rank, world, device = init_distributed(cfg.device)
    mode = cfg.parallel if cfg.parallel != "auto" else ("ddp" if world > 1 else "none")
    if mode in ("ddp", "fsdp") and not dist.is_initialized():
        raise ConfigError(f"train.parallel: {mode} needs torchrun (WORLD_SIZE > 1)")
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    resume_from = (
        checkpoint.latest(cfg.out_dir) if cfg.resume == "auto" else (None if cfg.resume == "none" else cfg.resume)
    )
    raw = build_model(cfg, device)
    raw.attn_impl = cfg.attn_impl
    if cfg.compile and cfg.attn_impl == "auto" and device.type == "cpu":
        raw.attn_impl = "sdpa"  # per-sentence calls would recompile each compiled block for every new split
    mcfg = raw.cfg
    model = parallelize(raw, mode, device, cfg.compile)
    optimizer = build_optimizer(model, cfg)
    loader = ShardLoader(
        cfg.train_data,
        cfg.seq_len,
        cfg.batch_size,
        split=cfg.train_split,
        rank=rank,
        world_size=world,
        num_workers=cfg.num_workers,
        seed=cfg.seed,
        shuffle_rowgroups=cfg.shuffle_rowgroups,
        grad_accum=cfg.grad_accum,
        partitions=cfg.data_partitions,
        bos_id=mcfg.bos_id,
        eos_id=mcfg.eos_id,
    )

    start = 0
    if resume_from:
        ckpt = checkpoint.read(resume_from)
        checkpoint.restore(ckpt, model, optimizer, rank)
        try:
            loader.load_state_dict(ckpt["loader"])
        except ValueError as exc:
            raise ConfigError(f"train.resume: {resume_from}: {exc}") from None
        start = ckpt["step"]
        if rank == 0:
            print(f"resumed from {resume_from} at step {start} on {world} rank(s) x {cfg.num_workers} worker(s)")
    samples = None
    if cfg.log_samples:
        Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
        samples = open(Path(cfg.out_dir) / f"samples-rank{rank}.csv", "a")

    end = cfg.stop_step or cfg.max_steps
    tokens_per_step = cfg.batch_size * cfg.grad_accum * world * cfg.seq_len
    peak = peak_flops(device, cfg.peak_tflops)
    fpt = flops_per_token(mcfg, cfg.seq_len)
    log = RunLogger(cfg.out_dir, cfg.max_steps, start, enabled=rank == 0, tensorboard=cfg.tensorboard)
    if rank == 0:
        log.bar.write(
            f"model {cfg.init_from or cfg.model}: {raw.num_params() / 1e6:.1f}M params; "
            f"{world} rank(s), {mode}; "
            f"{tokens_per_step:,} tokens/step; device {device}"
        )
    losses: list[float] = []
    batches = iter(loader)
    t0, tokens_since, last_log = time.perf_counter(), 0, start
    for step in range(start, end):
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        micro = [next(batches) for _ in range(cfg.grad_accum)]
        if samples:
            ids = torch.cat([m["sample_ids"] for m in micro]).tolist()
            crcs = [
                zlib.crc32(torch.cat([t, y[-1:]]).numpy().tobytes())
                for m in micro
                for t, y in zip(m["tokens"], m["targets"])
            ]
            samples.write("".join(f"{step},{i},{c}\n" for i, c in zip(ids, crcs)))
            samples.flush()
        loss, gnorm = train_step(
            model, optimizer, micro, device=device, amp_dtype=cfg.dtype, grad_clip=cfg.grad_clip, doc_mask=cfg.doc_mask
        )
        losses.append(loss)
        tokens_since += tokens_per_step
        done = step + 1
        if done % cfg.log_every == 0 or done == end:
            dt = time.perf_counter() - t0
            tps = tokens_since / dt
            mfu = fpt * tps / world / peak if peak else None
            interval = losses[-(done - last_log) :]  # mean over the interval: one batch is noisy
            last_log = done
            log.log(
                done,
                loss=sum(interval) / len(interval),
                lr=lr,
                grad_norm=gnorm,
                tokens_per_s=tps,
                mfu=mfu,
                tokens_seen=done * tokens_per_step,
            )
            t0, tokens_since = time.perf_counter(), 0
        log.advance()
        if (cfg.eval_every and done % cfg.eval_every == 0) or done == end:
            val = validation(model, cfg, rank, world, device)
            if val is not None:
                log.log(done, val_loss=val)
        if (cfg.ckpt_every and done % cfg.ckpt_every == 0) or done == end:
            save_checkpoint(model, optimizer, done, cfg, mcfg, loader, rank)
    if samples:
        samples.close()
    if rank == 0:
        png = log.close()
        if png:
            print(f"loss curve: {png}")
    return losses


def build_model(cfg: TrainConfig, device: torch.device) -> LVM:
    """The named size, or the architecture and weights of `init_from` (a resume then overwrites them).

    RoPE tables cover the full LVM context even when training on shorter windows, so a
    checkpoint can prompt with up to 4096 tokens (16 images) at generation time.
    """
    max_len = max(cfg.seq_len, schema.CONTEXT_LENGTH)
    if not cfg.init_from:
        with torch.device(device):
            return LVM(model_config(cfg.model, max_seq_len=max_len))
    from uvd.model import hf

    if hf.is_hf(cfg.init_from):
        model = hf.load_hf(cfg.init_from, device)
    else:
        ckpt = checkpoint.read(cfg.init_from)
        with torch.device(device):
            model = LVM(ModelConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
    if model.cfg.max_seq_len < cfg.seq_len:
        raise ConfigError(f"train.seq_len: {cfg.seq_len} > the context of {cfg.init_from} ({model.cfg.max_seq_len})")
    return model


def validation(model, cfg: TrainConfig, rank: int, world: int, device) -> float | None:
    from uvd.model.evaluate import validation_loss

    mcfg = getattr(model, "module", model).cfg
    try:
        loader = ShardLoader(
            cfg.val_data or cfg.train_data,
            cfg.seq_len,
            cfg.batch_size,
            split=cfg.val_split,
            rank=rank,
            world_size=world,
            shuffle=False,
            epochs=1,
            bos_id=mcfg.bos_id,
            eos_id=mcfg.eos_id,
        )
    except (FileNotFoundError, ValueError):
        return None
    return validation_loss(model, loader, cfg.eval_batches, device=device, amp_dtype=cfg.dtype, doc_mask=cfg.doc_mask)


def save_checkpoint(model, optimizer, step: int, cfg: TrainConfig, mcfg, loader: ShardLoader, rank: int) -> None:
    out = Path(cfg.out_dir)
    checkpoint.save(
        out / f"step_{step:08d}.pt",
        model,
        optimizer,
        step,
        dataclasses.asdict(cfg),
        dataclasses.asdict(mcfg),
        loader.state_dict(),
    )
    if rank == 0 and cfg.keep_checkpoints > 0:
        old = sorted(out.glob("step_*.pt"))[: -cfg.keep_checkpoints]
        for path in old:
            path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        parser = config_parser("uvd-train", (__doc__ or "").strip().split("\n")[0], TrainConfig)
        parser.add_argument("--config", help="a YAML file of these options; flags override it")
        parser.print_help()
        return 0
    path = None
    rest = []
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        elif arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif i == 0 or argv[i - 1] != "--config":
            rest.append(arg)
    try:
        cfg = load_config(path, rest)
    except ConfigError as exc:
        print(f"uvd-train: {exc}", file=sys.stderr)
        return 2
    try:
        train(cfg)
    except ConfigError as exc:
        print(f"uvd-train: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"uvd-train: {exc}. Build shards first (`make dataset`) or set --train_data.", file=sys.stderr)
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
