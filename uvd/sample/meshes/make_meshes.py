"""Rebuild the sample meshes in this folder (all made here with trimesh; see README.md).

    .venv/bin/python uvd/sample/meshes/make_meshes.py

Each file exercises one way Objaverse objects carry colour: an image texture with UVs (GLB), face
colours on several scene nodes with their own transforms (GLB), vertex colours (OBJ).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import trimesh
from PIL import Image

HERE = Path(__file__).resolve().parent

# Box faces as (normal axis, sign): each gets one cell of a 3x2 texture atlas.
_FACES = [(0, 1), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1)]
_CELL_COLOURS = [(200, 60, 50), (60, 150, 70), (60, 90, 200), (220, 180, 40), (150, 70, 170), (40, 170, 180)]


def _atlas(cell: int = 64) -> np.ndarray:
    """3x2 atlas: a coloured cell per face with its number drawn on it, so every side is told apart."""
    atlas = np.zeros((2 * cell, 3 * cell, 3), np.uint8)
    for i, colour in enumerate(_CELL_COLOURS):
        r, c = divmod(i, 3)
        tile = np.full((cell, cell, 3), colour, np.uint8)
        tile[::8, :] = tile[::8, :] * 0.8  # wood-like grain lines
        cv2.rectangle(tile, (2, 2), (cell - 3, cell - 3), (30, 20, 10), 3)
        cv2.putText(tile, str(i + 1), (cell // 4, 3 * cell // 4), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
        atlas[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = tile
    return atlas


def textured_crate() -> trimesh.Trimesh:
    """A unit cube with 4 vertices per face (so UVs are per face) textured from the atlas."""
    vertices, faces, uvs = [], [], []
    for i, (axis, sign) in enumerate(_FACES):
        normal = np.zeros(3)
        normal[axis] = sign
        # Up on screen when the face is seen from outside: +Y for the sides, towards -Z/+Z on top/bottom.
        up = np.array([0.0, 1.0, 0.0]) if axis != 1 else np.array([0.0, 0.0, -sign])
        right = np.cross(-normal, up)
        r, c = divmod(i, 3)
        base = len(vertices)
        for du, dv in [(-1, -1), (1, -1), (1, 1), (-1, 1)]:  # counter-clockwise seen from outside
            vertices.append(0.5 * normal + 0.5 * (du * right + dv * up))
            uvs.append(((c + (du + 1) / 2) / 3, 1 - (r + 1 - (dv + 1) / 2) / 2))
        faces += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
    material = trimesh.visual.material.PBRMaterial(
        baseColorTexture=Image.fromarray(_atlas()), metallicFactor=0.0, roughnessFactor=0.9
    )
    visual = trimesh.visual.TextureVisuals(uv=np.array(uvs), material=material)
    return trimesh.Trimesh(np.array(vertices), np.array(faces), visual=visual, process=False)


def _coloured(mesh: trimesh.Trimesh, rgb: tuple[int, int, int]) -> trimesh.Trimesh:
    mesh.visual.face_colors = [*rgb, 255]
    return mesh


def house_scene() -> trimesh.Scene:
    """A small house of face-coloured parts, each a scene node with its own transform."""
    scene = trimesh.Scene()
    scene.add_geometry(
        _coloured(trimesh.creation.box((2.0, 1.2, 1.6)), (230, 210, 170)),
        node_name="walls",
        transform=trimesh.transformations.translation_matrix((0, 0.6, 0)),
    )
    roof = trimesh.creation.cone(radius=1.5, height=0.9, sections=4)
    roof.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, (1, 0, 0)))  # cone axis +Z -> +Y
    roof.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 4, (0, 1, 0)))
    scene.add_geometry(
        _coloured(roof, (170, 40, 30)),
        node_name="roof",
        transform=trimesh.transformations.translation_matrix((0, 1.2, 0)),
    )
    scene.add_geometry(
        _coloured(trimesh.creation.box((0.4, 0.7, 0.05)), (90, 50, 20)),
        node_name="door",
        transform=trimesh.transformations.translation_matrix((0, 0.35, 0.81)),
    )
    window = _coloured(trimesh.creation.box((0.35, 0.35, 0.05)), (120, 180, 230))
    for x in (-0.6, 0.6):
        scene.add_geometry(
            window, node_name=f"window_{x:+.1f}", transform=trimesh.transformations.translation_matrix((x, 0.7, 0.81))
        )
    scene.add_geometry(
        _coloured(trimesh.creation.box((0.25, 0.6, 0.25)), (110, 110, 110)),
        node_name="chimney",
        transform=trimesh.transformations.translation_matrix((0.55, 1.6, -0.3)),
    )
    return scene


def rainbow_torus() -> trimesh.Trimesh:
    """A torus whose vertex colours run through the hues around its ring (OBJ keeps vertex colours)."""
    torus = trimesh.creation.torus(major_radius=1.0, minor_radius=0.35, major_sections=48, minor_sections=16)
    angle = np.arctan2(torus.vertices[:, 1], torus.vertices[:, 0])
    hue = ((angle + np.pi) / (2 * np.pi) * 179).astype(np.uint8)
    hsv = np.stack([hue, np.full_like(hue, 200), np.full_like(hue, 230)], 1)[None]
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]
    torus.visual.vertex_colors = np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], 1)
    torus.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 3, (1, 0, 0)))
    return torus


def main() -> None:
    textured_crate().export(HERE / "crate.glb")
    house_scene().export(HERE / "house.glb")
    rainbow_torus().export(HERE / "torus.obj", include_normals=False, digits=5)
    for path in sorted(HERE.glob("*.glb")) + sorted(HERE.glob("*.obj")):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
