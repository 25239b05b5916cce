"""Multi-view renders of one mesh: orbit cameras (pure numpy) and a headless pyrender renderer.

The LVM's Objaverse sequences (UVDv1): each object is normalised to the unit sphere at the origin
and seen from 24 cameras on one circle of the orbit: azimuths 0, 15, ..., 345 degrees, one radius
drawn from U[1.5, 2.2] and one elevation from U[-45, 45] degrees per object, both seeded by the
object's uid so a rerun gives the same pixels.

Conventions (glTF's, which Objaverse GLBs follow): +Y is up, the camera looks down its own -Z.
Azimuth 0 puts the camera on +Z (the model's front), azimuth 90 on +X: the camera walks
counter-clockwise seen from above, so the object seems to turn clockwise and what is on the
screen's right at one view moves left at the next. Elevation > 0 looks down from above.

Everything up to `MeshRenderer` is numpy/trimesh and runs without OpenGL. `MeshRenderer` imports
pyrender lazily: PYOPENGL_PLATFORM (osmesa or egl) must be set before OpenGL is first imported, so
the renderer sets it from its `platform` argument when the environment does not already say.
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from uvd import hashing
from uvd.schema import IMAGE_SIZE

NUM_VIEWS = 24
AZIMUTH_STEP_DEG = 15.0
RADIUS_RANGE = (1.5, 2.2)
ELEVATION_RANGE_DEG = (-45.0, 45.0)
MESH_EXTENSIONS = (".glb", ".gltf", ".obj", ".ply", ".stl")  # what trimesh loads and we test


class MeshError(ValueError):
    """A mesh we cannot render; `reason` is the failure row's short key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# --- cameras (pure numpy) ------------------------------------------------------------------------
@dataclass(frozen=True)
class View:
    """One camera of the orbit: where it sits, in degrees and scene units, and its 4x4 pose."""

    index: int
    azimuth_deg: float
    elevation_deg: float
    radius: float
    pose: np.ndarray  # camera-to-world, OpenGL convention (looks down -Z)

    def as_dict(self) -> dict[str, float]:
        return {
            "view": self.index,
            "azimuth_deg": round(self.azimuth_deg, 4),
            "elevation_deg": round(self.elevation_deg, 4),
            "radius": round(self.radius, 6),
        }


def seeded_rng(uid: str, seed: int = 0) -> np.random.Generator:
    """A generator that depends only on (seed, uid): the same object gets the same cameras anywhere."""
    return hashing.seeded_rng(f"{seed}:{uid}")


def camera_position(azimuth_deg: float, elevation_deg: float, radius: float) -> np.ndarray:
    """Point on the sphere of `radius`: azimuth 0 on +Z, 90 on +X; elevation towards +Y."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return radius * np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])


def look_at(eye: np.ndarray, target: np.ndarray | None = None, up: np.ndarray | None = None) -> np.ndarray:
    """Camera-to-world pose of a camera at `eye` looking at `target` (OpenGL: -Z forward, +Y up)."""
    target = np.zeros(3) if target is None else np.asarray(target, dtype=float)
    up = np.array([0.0, 1.0, 0.0]) if up is None else np.asarray(up, dtype=float)
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-8:  # looking straight up or down: any horizontal right will do
        right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right = right / np.linalg.norm(right)
    true_up = np.cross(right, forward)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, true_up, -forward, eye
    return pose


def orbit_views(
    uid: str,
    seed: int = 0,
    num_views: int = NUM_VIEWS,
    azimuth_step_deg: float = AZIMUTH_STEP_DEG,
    radius_range: tuple[float, float] = RADIUS_RANGE,
    elevation_range_deg: tuple[float, float] = ELEVATION_RANGE_DEG,
) -> list[View]:
    """The object's orbit: one radius and one elevation drawn per uid, `num_views` azimuth steps."""
    rng = seeded_rng(uid, seed)
    radius = float(rng.uniform(*radius_range))
    elevation = float(rng.uniform(*elevation_range_deg))
    views = []
    for i in range(num_views):
        azimuth = (i * azimuth_step_deg) % 360.0
        eye = camera_position(azimuth, elevation, radius)
        views.append(View(i, azimuth, elevation, radius, look_at(eye)))
    return views


def fits_in_view(radius_min: float, yfov_deg: float) -> bool:
    """Whether the unit sphere, seen from the nearest camera, fits in the vertical field of view."""
    return radius_min > 1.0 and np.degrees(2 * np.arcsin(1.0 / radius_min)) <= yfov_deg


# --- meshes (trimesh) ------------------------------------------------------------------------------
def load_scene(source: str | bytes, file_type: str | None = None) -> Any:
    """A trimesh.Scene from a path (resolves .mtl/.bin/textures beside it) or from file bytes.

    Raises MeshError("unreadable") for anything trimesh cannot parse (truncated, wrong format).
    """
    import trimesh

    try:
        if isinstance(source, (bytes, bytearray)):
            if not file_type:
                raise MeshError("unreadable", "file_type is needed to load bytes")
            return trimesh.load_scene(io.BytesIO(source), file_type=file_type.lstrip("."), process=False)
        return trimesh.load_scene(source, process=False)
    except MeshError:
        raise
    except Exception as exc:  # noqa: BLE001 - trimesh raises many types for bad files
        raise MeshError("unreadable", f"{type(exc).__name__}: {exc}") from exc


def scene_meshes(scene: Any) -> list[tuple[Any, np.ndarray]]:
    """(Trimesh, world transform) for every triangle mesh instance; points and lines are ignored."""
    import trimesh

    out = []
    for node in scene.graph.nodes_geometry:
        transform, name = scene.graph[node]
        geom = scene.geometry.get(name)
        if isinstance(geom, trimesh.Trimesh) and len(geom.faces) > 0:
            out.append((geom, np.asarray(transform, dtype=float)))
    return out


def check_meshes(meshes: list[tuple[Any, np.ndarray]], max_faces: int = 0) -> None:
    """Raise MeshError for what would render wrong or not at all (the failure row's reason)."""
    if not meshes:
        raise MeshError("no_geometry", "no triangle mesh with faces")
    for geom, transform in meshes:
        if not np.isfinite(geom.vertices).all() or not np.isfinite(transform).all():
            raise MeshError("nan_vertices", f"{int((~np.isfinite(geom.vertices)).any(1).sum())} bad vertices")
    faces = sum(len(g.faces) for g, _ in meshes)
    if max_faces and faces > max_faces:
        raise MeshError("too_many_faces", f"{faces} > max_faces {max_faces}")


def normalization(meshes: list[tuple[Any, np.ndarray]]) -> np.ndarray:
    """4x4 similarity moving the bounding box centre to the origin and the farthest vertex to radius 1.

    Vertices are taken in world space (after each instance's transform), so instanced parts count.
    """
    points = np.concatenate([geom.vertices @ transform[:3, :3].T + transform[:3, 3] for geom, transform in meshes])
    centre = (points.min(0) + points.max(0)) / 2
    extent = np.linalg.norm(points - centre, axis=1).max()
    if not np.isfinite(extent) or extent < 1e-12:
        raise MeshError("degenerate", "all vertices at one point")
    norm = np.eye(4)
    norm[:3, :3] *= 1.0 / extent
    norm[:3, 3] = -centre / extent
    return norm


# --- rendering (pyrender, headless) ----------------------------------------------------------------
@dataclass(frozen=True)
class Lighting:
    """A headlight (follows the camera, so every visible side is lit) plus ambient and a sky light."""

    ambient: float = 0.35
    headlight: float = 2.5
    sky: float = 1.0  # fixed, from above: keeps top and bottom apart


def _use_platform(platform: str) -> None:
    """PYOPENGL_PLATFORM from the environment wins (it may already be fixed: OpenGL reads it once,
    at import); `platform` is the default when it is unset."""
    chosen = os.environ.get("PYOPENGL_PLATFORM")
    if platform and not chosen:
        os.environ["PYOPENGL_PLATFORM"] = platform
    elif platform and chosen != platform:
        import logging

        logging.getLogger("uvd.render").info("PYOPENGL_PLATFORM=%s is set: rendering with it, not %s", chosen, platform)


def _load_triton_before_mesa() -> None:
    """Mesa's llvmpipe and triton (pulled in by torch's CUDA wheels) each bundle LLVM; a process that
    creates a GL context first and imports triton later (torch does, lazily, at a model's first
    init) segfaults. Measured: mesa 22.3 + triton 3.7.1 crash in that order, the reverse works. So
    triton, when installed, loads before the first context."""
    try:
        import triton  # noqa: F401
    except ImportError:
        pass


class MeshRenderer:
    """One offscreen GL context, made once (per Beam worker via setup()) and reused for every object.

    A context is bound to a thread while in use; a lock serialises renders so a DoFn instance moved
    between Beam's threads stays correct.

    EGL (the default) renders into pyrender's 4x multisampled framebuffer: edges come out
    anti-aliased. OSMesa has no framebuffer objects in pyrender, so it reads the plain buffer
    (aliased edges) and, measured by benchmarks/bench_render.py, is also slower on llvmpipe.
    `supersample` renders at k x 256 and box-averages down (smooths texture detail too; ~k^2 fill).
    """

    def __init__(
        self,
        platform: str = "egl",
        size: int = IMAGE_SIZE,
        yfov_deg: float = 85.0,
        background: tuple[int, int, int] = (255, 255, 255),
        lighting: Lighting = Lighting(),
        supersample: int = 1,
        max_metallic: float = 0.0,
    ) -> None:
        _use_platform(platform)
        _load_triton_before_mesa()
        import pyrender

        self._pyrender = pyrender
        self.size, self.supersample, self.max_metallic = size, supersample, max_metallic
        self.yfov = np.radians(yfov_deg)
        self.background = np.array([*background, 255], dtype=float) / 255.0
        self.lighting = lighting
        self.platform = os.environ.get("PYOPENGL_PLATFORM", "")
        self._lock = threading.Lock()
        self._renderer = pyrender.OffscreenRenderer(size * supersample, size * supersample)
        self._release()

    def close(self) -> None:
        """Free this renderer's GL objects and context, never the process's EGL display.

        pyrender's own delete() calls eglTerminate, which kills every other context of the process
        (another DoFn instance, another stage): here only our context is destroyed. Best effort: at
        worker teardown a GL error must not fail the job.
        """
        renderer, self._renderer = getattr(self, "_renderer", None), None
        if renderer is None:
            return
        with self._lock:
            try:
                platform = renderer._platform
                platform.make_current()
                renderer._renderer.delete()
                if hasattr(platform, "_egl_display"):
                    from OpenGL.EGL import EGL_NO_CONTEXT, EGL_NO_SURFACE, eglDestroyContext, eglMakeCurrent

                    eglMakeCurrent(platform._egl_display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)
                    eglDestroyContext(platform._egl_display, platform._egl_context)
                    platform._egl_context = platform._egl_display = None  # pyrender's __del__: no terminate
                else:
                    platform.delete_context()
            except Exception as exc:  # noqa: BLE001
                import logging

                logging.getLogger("uvd.render").warning("closing the GL context failed: %s", exc)

    def __del__(self) -> None:
        self.close()

    def _release(self) -> None:
        """Unbind the context from this thread. pyrender leaves it bound (its EGL make_uncurrent is
        a no-op), and EGL refuses a context still bound to another thread (EGL_BAD_ACCESS): Beam
        may call setup() and process() on different threads. OSMesa binds per call anyway."""
        platform = self._renderer._platform
        if hasattr(platform, "_egl_display"):
            from OpenGL.EGL import EGL_NO_CONTEXT, EGL_NO_SURFACE, eglMakeCurrent

            eglMakeCurrent(platform._egl_display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)

    def _pyrender_mesh(self, geom: Any) -> Any:
        """Textures and vertex colours come through; face colours need flat (unmerged) shading.

        Two material fixes, so objects look like themselves under lights alone (no environment
        map): metalness is capped at `max_metallic` (glTF's default metallicFactor is 1, and a
        metal with nothing to reflect but two lights renders dark), and an OBJ/MTL texture is not
        dimmed by its Kd (pyrender multiplies; Blender, which most Objaverse renders use, does not).
        """
        import trimesh

        kind = getattr(geom.visual, "kind", None)
        mesh = self._pyrender.Mesh.from_trimesh(geom, smooth=kind != "face")
        source = getattr(geom.visual, "material", None)
        textured_simple = (
            kind == "texture"
            and isinstance(source, trimesh.visual.material.SimpleMaterial)
            and getattr(source, "image", None) is not None
        )
        for prim in mesh.primitives:
            material = prim.material
            if hasattr(material, "metallicFactor"):
                material.metallicFactor = min(material.metallicFactor, self.max_metallic)
            if textured_simple:
                alpha = float(np.asarray(material.baseColorFactor).ravel()[-1])
                material.baseColorFactor = np.array([1.0, 1.0, 1.0, alpha])
        return mesh

    def build_scene(self, meshes: list[tuple[Any, np.ndarray]], norm: np.ndarray) -> tuple[Any, Any, Any]:
        pr = self._pyrender
        scene = pr.Scene(bg_color=self.background, ambient_light=np.full(3, self.lighting.ambient))
        for geom, transform in meshes:
            scene.add(self._pyrender_mesh(geom), pose=norm @ transform)
        camera = scene.add(pr.PerspectiveCamera(yfov=self.yfov, znear=0.05, zfar=10.0, aspectRatio=1.0))
        headlight = scene.add(pr.DirectionalLight(color=np.ones(3), intensity=self.lighting.headlight))
        if self.lighting.sky > 0:
            scene.add(
                pr.DirectionalLight(color=np.ones(3), intensity=self.lighting.sky),
                pose=look_at(np.array([0.0, 1.0, 0.0]), up=np.array([0.0, 0.0, -1.0])),
            )
        return scene, camera, headlight

    def render(self, meshes: list[tuple[Any, np.ndarray]], views: list[View]) -> np.ndarray:
        """uint8 (len(views), size, size, 3) RGB renders of the normalised meshes."""
        norm = normalization(meshes)
        scene, camera, headlight = self.build_scene(meshes, norm)
        out = np.empty((len(views), self.size, self.size, 3), dtype=np.uint8)
        with self._lock:
            try:
                for i, view in enumerate(views):
                    scene.set_pose(camera, view.pose)
                    scene.set_pose(headlight, view.pose)
                    color, _ = self._renderer.render(scene, flags=self._pyrender.RenderFlags.SKIP_CULL_FACES)
                    out[i] = _downsample(color[..., :3], self.supersample)
            finally:
                # pyrender frees this object's GL buffers when the next scene renders; releasing
                # the context lets the next render run on another thread.
                self._release()
        return out


def _downsample(image: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return image
    h, w, c = image.shape
    return image.reshape(h // k, k, w // k, k, c).mean(axis=(1, 3)).round().astype(np.uint8)


def render_views(
    source: str | bytes, renderer: MeshRenderer, views: list[View], file_type: str | None = None, max_faces: int = 0
) -> np.ndarray:
    """Load, check and render one mesh file; raises MeshError with the failure reason."""
    meshes = scene_meshes(load_scene(source, file_type))
    check_meshes(meshes, max_faces)
    images = renderer.render(meshes, views)
    if (images == np.asarray(renderer.background[:3] * 255, dtype=np.uint8)).all():
        raise MeshError("empty_render", "every view is background only")
    return images
