"""Training log: a console progress bar, metrics.csv, TensorBoard, and loss.png at the end.

Only rank 0 logs. TensorBoard and matplotlib are optional: without them the CSV and console still
work (the trainer must never die for a plot).
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from typing import Any

import torch

# Dense bf16 peak FLOP/s per device, for the MFU estimate (vendor datasheets, no sparsity).
PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12}


def peak_flops(device: torch.device, override_tflops: float = 0.0) -> float | None:
    """Peak FLOP/s of `device` (None when unknown, e.g. a CPU: MFU is then not reported)."""
    if override_tflops > 0:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_FLOPS.items() if k in name), None)


class RunLogger:
    FIELDS = ["step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "tokens_seen", "val_loss"]

    def __init__(
        self, out_dir: str | Path, total_steps: int, start_step: int = 0, enabled: bool = True, tensorboard: bool = True
    ):
        self.enabled = enabled
        self.out_dir = Path(out_dir)
        self.bar: Any = None  # tqdm on rank 0; None when disabled (log() and advance() check)
        self.tb: Any = None
        self.csv_file: Any = None
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / "metrics.csv"
        keep = self._rows_before(path, start_step)
        self.csv_file = open(path, "w", newline="")
        self.csv = csv.DictWriter(self.csv_file, fieldnames=self.FIELDS)
        self.csv.writeheader()
        self.csv.writerows(keep)  # a resumed run continues the same curve
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.out_dir / "tb"), purge_step=start_step or None)
            except Exception as exc:  # noqa: BLE001 - TensorBoard is a nicety
                print(f"tensorboard disabled: {exc}", file=sys.stderr)
        from tqdm import tqdm

        self.bar = tqdm(
            total=total_steps, initial=start_step, dynamic_ncols=True, unit="step", disable=None, file=sys.stdout
        )

    @staticmethod
    def _rows_before(path: Path, step: int) -> list[dict]:
        if not path.exists() or step == 0:
            return []
        with open(path) as f:
            return [r for r in csv.DictReader(f) if int(r["step"]) <= step]

    def log(self, step: int, **metrics: float | None) -> None:
        if not self.enabled:
            return
        row = {"step": step, **{k: ("" if v is None else v) for k, v in metrics.items()}}
        self.csv.writerow({k: row.get(k, "") for k in self.FIELDS})
        self.csv_file.flush()
        for key, value in metrics.items():
            if self.tb is not None and value is not None:
                self.tb.add_scalar(f"train/{key}" if key != "val_loss" else "val/loss", value, step)
        if "loss" in metrics and self.bar.disable:  # not a terminal (a log file): plain lines
            mfu = metrics.get("mfu")
            print(
                f"step {step}/{self.bar.total} loss {metrics['loss']:.4f} lr {metrics['lr']:.2e} "
                f"gnorm {metrics['grad_norm']:.2f} {metrics['tokens_per_s']:,.0f} tok/s"
                + (f" mfu {100 * mfu:.1f}%" if mfu is not None else ""),
                flush=True,
            )
        elif "loss" in metrics:
            post = {
                "loss": f"{metrics['loss']:.4f}",
                "lr": f"{metrics['lr']:.2e}",
                "gnorm": f"{metrics['grad_norm']:.2f}",
                "tok/s": f"{metrics['tokens_per_s']:,.0f}",
            }
            if metrics.get("mfu") is not None:
                post["mfu"] = f"{100 * (metrics['mfu'] or 0.0):.1f}%"
            self.bar.set_postfix(post, refresh=False)
        if "val_loss" in metrics:
            self.bar.write(f"step {step}: val_loss {metrics['val_loss']:.4f}")

    def advance(self, n: int = 1) -> None:
        if self.enabled:
            self.bar.update(n)

    def close(self) -> Path | None:
        """Flush everything and draw loss.png from metrics.csv; returns the PNG path."""
        if not self.enabled:
            return None
        self.bar.close()
        self.csv_file.close()
        if self.tb is not None:
            self.tb.close()
        try:
            return plot_loss(self.out_dir / "metrics.csv", self.out_dir / "loss.png")
        except Exception as exc:  # noqa: BLE001
            print(f"loss plot skipped: {exc}", file=sys.stderr)
            return None


def plot_loss(csv_path: Path, png_path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    train = [(int(r["step"]), float(r["loss"])) for r in rows if r["loss"]]
    val = [(int(r["step"]), float(r["val_loss"])) for r in rows if r["val_loss"]]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    if train:
        ax.plot(*zip(*train), label="train", lw=1)
    if val:
        ax.plot(*zip(*val), "o-", label="validation", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(f"loss (uniform over 8192 codes = {math.log(8192):.2f})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return png_path
