"""`uvd label`: expert pseudo-labels for unlabelled images, as annotation records.

handler.py       the common ModelHandler interface (load once, batch, device, bf16, hints)
depth.py         DPT / any transformers depth model      -> depth (disparity or metric)
segmentation.py  SegFormer / any transformers segmenter   -> ADE20K-150 class ids
normals.py       any torch module (TorchScript, factory)   -> normal vectors
edges.py         Canny, or a learned detector module        -> edges
checks.py        degenerate outputs -> "skipped" rows
pipeline.py      Config, LabelSource, source_transform, run (the stage)
"""
