"""`uvd <stage> [flags]`: one subcommand per stage; each stage module has `run(argv)`.

Stage modules are imported only when chosen, so `uvd --help` is fast and a stage's heavy imports
(Beam, OpenCV, renderers, torch) load only for that stage. Flags a stage does not know are passed
to Beam as pipeline options (--runner, --direct_num_workers, --project...).
"""

from __future__ import annotations

import importlib
import sys

# name -> (module with run(argv), one-line help). The order is the order of the data flow.
STAGES: dict[str, tuple[str, str]] = {
    "laion": ("uvd.sources.laion.pipeline", "LAION metadata Parquet -> downloaded 256px images, {image} sentences"),
    "video": ("uvd.sources.video.pipeline", "video files -> 16-frame sentences at strides 10/20/30"),
    "objaverse": ("uvd.sources.objaverse.pipeline", "GLB/GLTF/OBJ meshes -> 24-view offscreen renders"),
    "imagenet": ("uvd.sources.imagenet.pipeline", "class folders -> 16 same-class images per sentence"),
    "annotations": ("uvd.sources.annotations.pipeline", "labelled datasets (COCO, label maps, pairs) -> annotated sentences"),
    "pose": ("uvd.sources.pose.pipeline", "MMPose keypoints for unannotated images -> skeleton sentences"),
    "label": ("uvd.sources.label", "expert models (depth, normals, edges, segmentation) -> pseudo-labels"),
    "hf": ("uvd.sources.hf", "Hugging Face datasets -> images and sentences"),
    "tokenize": ("uvd.tokenize.stage", "images table -> tokens table (VQGAN, RunInference)"),
    "decode": ("uvd.tokenize.detokenize", "tokens table or shards -> PNGs"),
    "shards": ("uvd.assembly.shards", "sentences + tokens tables -> Parquet shards + dataset card"),
    "dataset": ("uvd.assembly.dataset", "a mixture manifest -> every source -> tokens -> mixed shards"),
    "remix": ("uvd.assembly.remix", "a new manifest over a finished build's cache -> new shards, no ingestion"),
    "retry": ("uvd.assembly.retry", "rerun only the work units whose failures are retriable (timeouts, 5xx)"),
    "preview": ("uvd.assembly.preview", "shards -> contact-sheet PNG of decoded sentences"),
}


def _usage() -> str:
    width = max(map(len, STAGES))
    lines = ["usage: uvd <stage> [flags]   (uvd <stage> --help for a stage's flags)", "", "stages:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in STAGES.items()]
    lines += ["", "Unknown flags go to Apache Beam, e.g. --runner=DataflowRunner --direct_num_workers=2."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in STAGES:
        print(f"uvd: unknown stage {name!r}; choose one of: {', '.join(STAGES)}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(STAGES[name][0])
    except ImportError as exc:
        if getattr(exc, "extra", None) is None:  # a stage's optional extra is missing: say how to install it
            raise
        print(f"uvd {name}: {exc}", file=sys.stderr)
        return 2
    result = module.run(rest)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
