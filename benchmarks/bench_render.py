"""Objaverse renders: views/s per core, headless OSMesa vs EGL (Mesa llvmpipe on CPU), one run.

    .venv/bin/python benchmarks/bench_render.py

Each platform runs in its own process (PYOPENGL_PLATFORM is fixed once OpenGL loads), pinned to one
rasteriser thread (LP_NUM_THREADS=1) so the figure is per core, as a Beam worker per core sees it;
views/s/core is views per CPU-second of that process (wall-clock views/s is printed too, but on a
shared machine it measures the neighbours as well).
A view is the stage's whole per-view cost: load + check + normalise the mesh, render 256x256, PNG
encode, amortised over the object's 24 views. The renderer is made once per process, not timed.
The figure is EGL (the stage's default; works with pyrender's pinned PyOpenGL 3.1.0, and renders
with 4x MSAA), the baseline OSMesa (needs PyOpenGL >= 3.1.7; no MSAA in pyrender).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MESHES = sorted(str(p) for p in (ROOT / "uvd" / "sample" / "meshes").iterdir() if p.suffix in (".glb", ".obj"))
SECONDS_PER_PLATFORM = 12.0


def worker(platform: str, seconds: float) -> dict:
    """Render the sample meshes round-robin for `seconds`; views/s of wall and of CPU time."""
    sys.path.insert(0, str(ROOT))
    from uvd.transforms import render as rt
    from uvd.transforms.image import encode_png

    renderer = rt.MeshRenderer(platform=platform)
    rt.render_views(MESHES[0], renderer, rt.orbit_views("warmup")[:2])  # compile shaders once
    views = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds:
        for path in MESHES:
            images = rt.render_views(path, renderer, rt.orbit_views(Path(path).stem))
            for image in images:
                encode_png(image)
            views += len(images)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "platform": platform,
        "renderer": _gl_renderer(),
        "views": views,
        "views_per_s": views / wall,
        "views_per_cpu_s": views / cpu,
    }


def _gl_renderer() -> str:
    try:
        from OpenGL import GL

        return (GL.glGetString(GL.GL_RENDERER) or b"?").decode()
    except Exception:  # noqa: BLE001 - no current context once released; the name is only a label
        return "llvmpipe (Mesa)"


def measure(platform: str) -> dict | None:
    env = {**os.environ, "PYOPENGL_PLATFORM": platform, "LP_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", platform], env=env, capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        print(f"{platform}: unavailable ({proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode})")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    results = {p: measure(p) for p in ("egl", "osmesa")}
    for r in results.values():
        if r:
            print(
                f"  {r['platform']}: {r['views']} views, {r['views_per_s']:.1f} views/s wall, "
                f"{r['views_per_cpu_s']:.1f} views per CPU-second"
            )
    egl, osmesa = results["egl"], results["osmesa"]
    # Per core = per CPU-second of the one rendering thread: robust to other load on a shared box.
    if egl and osmesa:
        print(
            f"render: {egl['views_per_cpu_s']:.1f} views/s/core (EGL, the default) vs baseline "
            f"{osmesa['views_per_cpu_s']:.1f} views/s/core (OSMesa) -> "
            f"{egl['views_per_cpu_s'] / osmesa['views_per_cpu_s']:.2f}x"
        )
    elif egl or osmesa:
        r = egl or osmesa
        print(f"render: {r['views_per_cpu_s']:.1f} views/s/core ({r['platform']}); the other platform is unavailable")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], SECONDS_PER_PLATFORM)))
    else:
        main()
