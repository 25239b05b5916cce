"""Small randomly initialised experts for tests and CPU benchmarks (no weights can be downloaded).

Built from the libraries' own config classes and written with `save_pretrained` (transformers) or
TorchScript (torch modules), so they load back through exactly the code real checkpoints use.
What they prove is structure, batching, shapes and rendering, not label quality.
"""

from __future__ import annotations

import os


def save_tiny_dpt(folder: str, image_size: int = 64, seed: int = 0, zero_head: bool = False) -> str:
    """A 4-layer DPT depth model (hidden 32) and its processor config -> `folder`.
    `zero_head` zeroes the last conv's weights: a constant depth for every image."""
    import torch
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    torch.manual_seed(seed)
    config = DPTConfig(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=image_size,
        patch_size=16,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[16, 16, 32, 32],
        fusion_hidden_size=16,
        head_in_index=-1,
    )
    model = DPTForDepthEstimation(config).eval()
    # transformers' init (normal std 0.02, zero bias) leaves a random head's ReLU output at ~1e-9:
    # PyTorch's default conv init and a positive last bias give a varied, positive disparity.
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            module.reset_parameters()
    with torch.no_grad():
        model.head.head[-2].bias.fill_(1.0)
        if zero_head:
            model.head.head[-2].weight.zero_()
    model.save_pretrained(folder)
    DPTImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return folder


def save_tiny_segformer(
    folder: str, image_size: int = 64, num_labels: int = 150, seed: int = 0, zero_head: bool = False
) -> str:
    """A 2-stage SegFormer (hidden 16/32) over the 150 ADE20K classes and its processor config -> `folder`.
    `zero_head` makes the classifier always answer class 2 (sky): a single-class map."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    torch.manual_seed(seed)
    config = SegformerConfig(
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[2, 1],
        hidden_sizes=[16, 32],
        patch_sizes=[7, 3],
        strides=[4, 2],
        num_attention_heads=[1, 2],
        mlp_ratios=[2, 2],
        decoder_hidden_size=32,
        num_labels=num_labels,
    )
    model = SegformerForSemanticSegmentation(config).eval()
    if zero_head:
        with torch.no_grad():
            model.decode_head.classifier.weight.zero_()
            model.decode_head.classifier.bias.zero_()
            model.decode_head.classifier.bias[2] = 1.0
    model.save_pretrained(folder)
    SegformerImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return folder


def save_tiny_mask2former(folder: str, image_size: int = 64, num_labels: int = 150, seed: int = 0) -> str:
    """A Mask2Former (Swin backbone, embed 16, 8 queries) over the ADE20K classes -> `folder`."""
    import torch
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SegformerImageProcessor, SwinConfig

    torch.manual_seed(seed)
    swin = SwinConfig(
        image_size=image_size,
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        window_size=4,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    config = Mask2FormerConfig(
        backbone_config=swin,
        hidden_dim=32,
        num_queries=8,
        encoder_layers=1,
        decoder_layers=2,
        feature_size=32,
        mask_feature_size=32,
        dim_feedforward=64,
        num_attention_heads=2,
        encoder_feedforward_dim=64,
        num_labels=num_labels,
    )
    Mask2FormerForUniversalSegmentation(config).eval().save_pretrained(folder)
    # Its own processor class needs extra packages here; the numbers it reads are the same keys.
    SegformerImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return folder


def _conv_net(out_channels: int, seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, out_channels, 3, padding=1),
    ).eval()


def save_tiny_torchscript(path: str, out_channels: int, seed: int = 0, zero_head: bool = False) -> str:
    """A 3-conv net (B, 3, h, w) -> (B, out_channels, h/2, w/2) saved as TorchScript: a stand-in for a
    normals (3 channels) or learned edges (1 channel) model. `zero_head` makes its output constant."""
    import torch

    net = _conv_net(out_channels, seed)
    if zero_head:
        with torch.no_grad():
            net[-1].weight.zero_()
            net[-1].bias.fill_(0.5)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.jit.script(net).save(path)
    return path
