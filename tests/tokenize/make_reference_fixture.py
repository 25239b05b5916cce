"""Regenerate tests/tokenize/fixtures/ from open-muse's own VQGANModel (not run by the tests).

    git clone https://github.com/huggingface/open-muse /tmp/open-muse   # commit 64e1afe used
    python tests/tokenize/make_reference_fixture.py /tmp/open-muse

It imports open-muse's muse/modeling_taming_vqgan.py with its ConfigMixin/ModelMixin replaced by
stand-ins that only record constructor arguments (open-muse's package imports many extras), and
writes:
  * open_muse_lvm_state_dict.json: state_dict names and shapes of the LVM config, built on the
    meta device (no 585 MB allocation);
  * open_muse_numerics.npz: for two tiny configs (attention, conv shortcuts, extra mid blocks,
    per-level decoder blocks, avg-pool resampling), the reference's token ids, latents and
    reconstructions for weights and inputs drawn by `fill_weights` / `reference_input` below,
    so uvd's model can be compared number for number without open-muse installed.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent / "fixtures"

LVM = dict(
    resolution=256,
    num_channels=3,
    hidden_channels=128,
    channel_mult=[1, 2, 2, 4, 6],
    num_res_blocks=2,
    attn_resolutions=[],
    no_attn_mid_block=True,
    z_channels=64,
    num_embeddings=8192,
    quantized_embed_dim=64,
    dropout=0.0,
    resample_with_conv=True,
    commitment_cost=0.25,
)
TINY = {
    "attn": dict(
        resolution=32,
        num_channels=3,
        hidden_channels=32,
        channel_mult=[1, 2, 2],
        num_res_blocks=2,
        attn_resolutions=[8],
        no_attn_mid_block=False,
        z_channels=16,
        num_embeddings=64,
        quantized_embed_dim=8,
    ),
    "variants": dict(
        resolution=32,
        num_channels=3,
        hidden_channels=32,
        channel_mult=[1, 2, 2],
        num_res_blocks=1,
        decoder_res_blocks=[1, 2, 1],
        extra_mid_res_blocks=1,
        decoder_hidden_channels=64,
        decoder_channel_mult=[1, 1, 2],
        attn_resolutions=[],
        no_attn_mid_block=True,
        z_channels=8,
        num_embeddings=32,
        quantized_embed_dim=4,
        resample_with_conv=False,
    ),
}


def fill_weights(model: torch.nn.Module, seed: int = 0) -> None:
    """Deterministic weights by parameter name (so two implementations get the same ones)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.state_dict().items()):
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith("bias"):
                p.copy_(0.05 * noise)
            elif "embedding" in name:
                p.copy_(noise)
            else:
                fan_in = max(1, p[0].numel())
                p.copy_(noise / fan_in**0.5)


def reference_input(resolution: int, n: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))


def _import_reference(checkout: Path):
    pkg = types.ModuleType("muse")
    pkg.__path__ = [str(checkout / "muse")]
    utils = types.ModuleType("muse.modeling_utils")

    class _Config(dict):
        __getattr__ = dict.__getitem__

        def __setattr__(self, key, value):
            self[key] = value

    def register_to_config(init):
        @functools.wraps(init)
        def wrapper(self, *args, **kwargs):
            bound = inspect.signature(init).bind(self, *args, **kwargs)
            bound.apply_defaults()
            torch.nn.Module.__init__(self)
            object.__setattr__(
                self, "config", _Config({k: v for k, v in bound.arguments.items() if k not in ("self", "kwargs")})
            )
            init(self, *args, **kwargs)

        return wrapper

    utils.ConfigMixin = type("ConfigMixin", (), {})
    utils.ModelMixin = type("ModelMixin", (torch.nn.Module,), {})
    utils.register_to_config = register_to_config
    sys.modules["muse"], sys.modules["muse.modeling_utils"] = pkg, utils
    import importlib

    return importlib.import_module("muse.modeling_taming_vqgan").VQGANModel


def main(checkout: str) -> None:
    checkout = Path(checkout)
    ref_cls = _import_reference(checkout)
    commit = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip() or os.environ.get("OPEN_MUSE_COMMIT", "")
    HERE.mkdir(exist_ok=True)
    with torch.device("meta"):
        lvm = ref_cls(**LVM)
    (HERE / "open_muse_lvm_state_dict.json").write_text(
        json.dumps(
            {
                "_how": f"open-muse VQGANModel at commit {commit or 'unknown'}, built on the meta device by "
                "tests/tokenize/make_reference_fixture.py",
                "config": LVM,
                "num_params": sum(p.numel() for p in lvm.parameters()),
                "state_dict": [[k, list(v.shape)] for k, v in lvm.state_dict().items()],
            },
            indent=0,
        )
        + "\n"
    )
    # Merge with what earlier runs wrote: the extra decoder options exist only on some open-muse
    # branches, so `variants` comes from such a commit and the rest from main.
    npz_path, meta_path = HERE / "open_muse_numerics.npz", HERE / "open_muse_configs.json"
    arrays = dict(np.load(npz_path)) if npz_path.exists() else {}
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    accepted = set(inspect.signature(ref_cls.__init__).parameters)
    for name, cfg in TINY.items():
        if not set(cfg) <= accepted:
            print(f"skip {name}: this open-muse commit lacks {sorted(set(cfg) - accepted)}")
            continue
        model = ref_cls(**cfg).eval()
        fill_weights(model)
        x = reference_input(cfg["resolution"])
        with torch.no_grad():
            latents = model.quant_conv(model.encoder(x))
            z_q, ids = model.encode(x)
            recon = model.decode(z_q)
            from_ids = model.decode_code(ids)
        arrays[f"{name}/latents"] = latents.numpy()
        arrays[f"{name}/ids"] = ids.numpy()
        arrays[f"{name}/recon"] = recon.numpy()
        arrays[f"{name}/decode_code"] = from_ids.numpy()
        arrays[f"{name}/keys"] = np.array([f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items()])
        meta[name] = {"open_muse_commit": commit, "torch": torch.__version__, "config": cfg}
    np.savez_compressed(npz_path, **arrays)
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {HERE} from open-muse {commit}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/open-muse")
