"""The stage registry: `uvd <stage>` name -> (module with `run(argv)`, one-line help).

Plain data with no imports, so the CLI stays fast and `uvd dataset`'s manifest can name source
stages without importing the CLI. The order is the order of the data flow.
"""

from __future__ import annotations

STAGES: dict[str, tuple[str, str]] = {
    "laion": ("uvd.sources.laion.pipeline", "LAION metadata Parquet -> downloaded 256px images, {image} sentences"),
    "video": ("uvd.sources.video.pipeline", "video files -> 16-frame sentences at strides 10/20/30"),
    "objaverse": ("uvd.sources.objaverse.pipeline", "GLB/GLTF/OBJ meshes -> 24-view offscreen renders"),
    "imagenet": ("uvd.sources.imagenet.pipeline", "class folders -> 16 same-class images per sentence"),
    "annotations": (
        "uvd.sources.annotations.pipeline",
        "labelled datasets (COCO, label maps, pairs) -> annotated sentences",
    ),
    "pose": ("uvd.sources.pose.pipeline", "MMPose keypoints for unannotated images -> skeleton sentences"),
    "label": ("uvd.sources.label.pipeline", "expert models (depth, normals, edges, segmentation) -> pseudo-labels"),
    "hf": ("uvd.sources.hf.pipeline", "Hugging Face datasets -> images and sentences"),
    "tokenize": ("uvd.tokenize.stage", "images table -> tokens table (VQGAN, RunInference)"),
    "decode": ("uvd.tokenize.detokenize", "tokens table or shards -> PNGs"),
    "shards": ("uvd.assembly.shards", "sentences + tokens tables -> Parquet shards + dataset card"),
    "dataset": ("uvd.assembly.dataset", "a mixture manifest -> every source -> tokens -> mixed shards"),
    "remix": ("uvd.assembly.remix", "a new manifest over a finished build's cache -> new shards, no ingestion"),
    "retry": ("uvd.assembly.retry", "rerun only the work units whose failures are retriable (timeouts, 5xx)"),
    "preview": ("uvd.assembly.preview", "shards -> contact-sheet PNG of decoded sentences"),
    "view": ("uvd.viewer.build", "shards, failures, stats -> a static viewer site (overview, sources, failures)"),
}

# Stages that are not sources of `uvd dataset` (they consume what sources produce).
NOT_SOURCES = ("tokenize", "decode", "shards", "dataset", "remix", "retry", "preview", "view")
SOURCE_STAGES = tuple(name for name in STAGES if name not in NOT_SOURCES)
