"""Orbit cameras, mesh checks and headless renders (uvd.transforms.render).

The render tests use a cube with a red +Z face and a green +Y face: which views show each colour
follows from the camera positions alone (a face is seen iff the camera is beyond its plane), and
the red face must slide right-to-left across the screen as the azimuth steps.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import trimesh

from uvd.transforms import render as rt

SAMPLES = Path(__file__).resolve().parents[2] / "uvd" / "sample" / "meshes"
RED, GREEN, GREY = (255, 0, 0), (0, 255, 0), (128, 128, 128)


# --- cameras ----------------------------------------------------------------------------------------
def test_orbit_has_24_views_at_15_degree_steps_on_one_circle():
    views = rt.orbit_views("some-uid")
    assert len(views) == 24
    assert [v.azimuth_deg for v in views] == [15.0 * i for i in range(24)]
    assert len({v.radius for v in views}) == 1 and len({v.elevation_deg for v in views}) == 1
    r, el = views[0].radius, views[0].elevation_deg
    assert 1.5 <= r <= 2.2 and -45 <= el <= 45
    for v in views:
        eye = v.pose[:3, 3]
        assert np.isclose(np.linalg.norm(eye), r)
        assert np.isclose(eye[1], r * np.sin(np.radians(el)))  # elevation lifts towards +Y
        forward = -v.pose[:3, 2]  # OpenGL camera looks down -Z
        assert np.allclose(forward, -eye / r, atol=1e-9)  # at the origin
        assert np.allclose(v.pose[:3, :3] @ v.pose[:3, :3].T, np.eye(3), atol=1e-9)
    assert np.allclose(views[0].pose[:3, 3], [0, r * np.sin(np.radians(el)), r * np.cos(np.radians(el))])
    assert views[6].pose[0, 3] > 1.0  # azimuth 90 is on +X


def test_orbit_is_seeded_by_uid_and_seed():
    a, b = rt.orbit_views("uid-a"), rt.orbit_views("uid-a")
    assert all(np.array_equal(x.pose, y.pose) for x, y in zip(a, b))
    draws = {(v[0].radius, v[0].elevation_deg) for v in (rt.orbit_views(f"uid-{i}") for i in range(50))}
    assert len(draws) == 50
    radii, elevations = zip(*draws)
    assert 1.5 <= min(radii) and max(radii) <= 2.2 and min(elevations) < -20 and max(elevations) > 20
    assert rt.orbit_views("uid-a", seed=1)[0].radius != a[0].radius


def test_look_at_straight_down_is_still_a_rotation():
    pose = rt.look_at(np.array([0.0, 2.0, 0.0]))
    assert np.allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3))
    assert np.allclose(-pose[:3, 2], [0, -1, 0])


def test_fits_in_view():
    assert rt.fits_in_view(1.5, 85.0)
    assert not rt.fits_in_view(1.5, 60.0)
    assert not rt.fits_in_view(1.0, 170.0)


# --- meshes -----------------------------------------------------------------------------------------
def test_normalization_maps_instances_to_the_unit_sphere():
    scene = trimesh.Scene()
    box = trimesh.creation.box((2.0, 2.0, 2.0))
    scene.add_geometry(box, node_name="a", transform=trimesh.transformations.translation_matrix((10, 0, 0)))
    scene.add_geometry(box, node_name="b", transform=trimesh.transformations.translation_matrix((14, 0, 0)))
    meshes = rt.scene_meshes(scene)
    assert len(meshes) == 2  # one geometry, two instances
    norm = rt.normalization(meshes)
    points = np.concatenate([trimesh.transform_points(g.vertices, norm @ t) for g, t in meshes])
    assert np.isclose(np.linalg.norm(points, axis=1).max(), 1.0)
    assert np.allclose((points.min(0) + points.max(0)) / 2, 0.0, atol=1e-9)


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("truncated.glb", (SAMPLES / "house.glb").read_bytes()[:1500], "unreadable"),
        ("garbage.glb", b"glTF\x02\x00\x00\x00not a real buffer", "unreadable"),
        ("empty.obj", b"# an OBJ with no geometry\n", "no_geometry"),
        ("points.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no_geometry"),
        ("nan.obj", b"v nan 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 2 3 4\n", "nan_vertices"),
        ("collapsed.obj", b"v 1 1 1\nv 1 1 1\nv 1 1 1\nf 1 2 3\n", "degenerate"),
    ],
)
def test_broken_meshes_raise_with_a_reason(tmp_path, name, data, reason):
    with pytest.raises(rt.MeshError) as err:
        meshes = rt.scene_meshes(rt.load_scene(_write(tmp_path, name, data)))
        rt.check_meshes(meshes)
        rt.normalization(meshes)
    assert err.value.reason == reason


def test_too_many_faces_and_bytes_loading():
    data = (SAMPLES / "crate.glb").read_bytes()
    meshes = rt.scene_meshes(rt.load_scene(data, file_type="glb"))
    rt.check_meshes(meshes, max_faces=12)
    with pytest.raises(rt.MeshError, match="too_many_faces"):
        rt.check_meshes(meshes, max_faces=11)


# --- rendering --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def renderer():
    r = rt.MeshRenderer(platform="egl")
    yield r
    r.close()


def marked_cube(path: Path) -> str:
    """A grey unit cube, red on its +Z face and green on its +Y face, written as GLB."""
    cube = trimesh.creation.box((1.0, 1.0, 1.0))
    cube.unmerge_vertices()  # GLB stores colours per vertex: shared corners would blend the faces
    colours = np.tile([*GREY, 255], (len(cube.faces), 1))
    normals = cube.face_normals
    colours[normals[:, 2] > 0.9, :3] = RED
    colours[normals[:, 1] > 0.9, :3] = GREEN
    cube.visual.face_colors = colours
    cube.export(path)
    return str(path)


def colour_mask(images: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """Pixels whose hue is that pure primary, whatever the shading (dark or lit)."""
    img = images.astype(int)
    on = np.array(rgb) > 0
    strong = img[..., on].min(-1)
    weak = img[..., ~on].max(-1)
    return (strong > 60) & (weak < strong * 0.35)


def test_marked_face_follows_the_azimuth(tmp_path, renderer):
    views = rt.orbit_views("cube", radius_range=(1.8, 1.8), elevation_range_deg=(20.0, 20.0))
    images = rt.render_views(marked_cube(tmp_path / "cube.glb"), renderer, views)
    assert images.shape == (24, 256, 256, 3) and images.dtype == np.uint8
    red = colour_mask(images, RED)
    # The cube's half-diagonal goes to 1, so the +Z face sits on the plane z = 0.5 / (sqrt(3) / 2).
    face_z = 0.5 / (np.sqrt(3) / 2)
    seen = []
    for view, mask in zip(views, red):
        eye_z = view.pose[2, 3]
        if eye_z > face_z + 0.05:
            assert mask.sum() > 200, f"red face should show at azimuth {view.azimuth_deg}"
            seen.append(view.index)
        elif eye_z < face_z - 0.05:
            # A hidden face leaves at most a few anti-aliased edge pixels near edge-on views (seen: 1).
            assert mask.sum() <= 4, f"red face should be hidden at azimuth {view.azimuth_deg}"
    assert 0 in seen and 12 not in seen
    # Front-on, the red face is centred; as the camera walks on, it slides right -> left.
    cx = {i: np.nonzero(red[i])[1].mean() for i in seen}
    assert abs(cx[0] - 127.5) < 3
    order = [i for i in range(-12, 12) if i % 24 in cx]  # ..., 22, 23, 0, 1, 2, ...
    xs = [cx[i % 24] for i in order]
    assert all(a > b for a, b in zip(xs, xs[1:])), xs
    assert xs[0] > 150 and xs[-1] < 105
    # Left/right mirror symmetry of the orbit: azimuth +a and -a put the face at mirrored x.
    for i in seen:
        if i and (24 - i) in cx:
            assert abs((cx[i] - 127.5) + (cx[24 - i] - 127.5)) < 2


def test_top_face_shows_only_from_above(tmp_path, renderer):
    path = marked_cube(tmp_path / "cube.glb")
    above = rt.render_views(path, renderer, rt.orbit_views("c", elevation_range_deg=(35.0, 35.0)))
    below = rt.render_views(path, renderer, rt.orbit_views("c", elevation_range_deg=(-35.0, -35.0)))
    assert all(colour_mask(above, GREEN).sum(axis=(1, 2)) > 200)
    assert colour_mask(below, GREEN).sum() == 0
    # Looking up, the top face is hidden but the front face still is not.
    assert colour_mask(below[:1], RED).sum() > 200


def test_object_is_framed_and_background_is_fixed(tmp_path, renderer):
    sphere = trimesh.creation.icosphere(subdivisions=3)
    sphere.apply_transform(trimesh.transformations.scale_and_translate(5.0, (40, -3, 7)))
    sphere.visual.vertex_colors = [40, 40, 200, 255]
    path = tmp_path / "sphere.obj"
    sphere.export(path)
    near = rt.render_views(str(path), renderer, rt.orbit_views("s", radius_range=(1.5, 1.5)))
    far = rt.render_views(str(path), renderer, rt.orbit_views("s", radius_range=(2.2, 2.2)))
    fg_near = (near != 255).any(-1)
    fg_far = (far != 255).any(-1)
    border = np.ones((256, 256), bool)
    border[2:-2, 2:-2] = False
    assert not fg_near[:, border].any()  # the nearest camera still sees it whole
    assert (near[:, border] == 255).all()  # white background
    ys, xs = np.nonzero(fg_near[0])
    assert abs(ys.mean() - 127.5) < 2 and abs(xs.mean() - 127.5) < 2  # recentred
    assert fg_far.sum() < 0.6 * fg_near.sum()  # farther camera, smaller object


def test_textures_and_vertex_colours_come_through(renderer):
    crate = rt.render_views(
        str(SAMPLES / "crate.glb"), renderer, rt.orbit_views("crate", elevation_range_deg=(0.0, 0.0))
    )
    centre = crate[0, 96:160, 96:160].reshape(-1, 3).astype(int)
    purple = (centre[:, 0] > centre[:, 1] + 30) & (centre[:, 2] > centre[:, 1] + 30)
    assert purple.mean() > 0.4  # side 5 of the atlas faces +Z
    white = (centre > 200).all(1)
    assert white.mean() > 0.05  # its painted numeral
    torus = rt.render_views(str(SAMPLES / "torus.obj"), renderer, rt.orbit_views("torus"))
    fg = torus[0][(torus[0] != 255).any(-1)].astype(int)
    hues = {tuple(c // 64) for c in fg}
    assert len(hues) >= 6  # a rainbow, not one flat colour


def test_renderer_works_from_another_thread(tmp_path, renderer):
    """Beam may set a DoFn up on one thread and process on another: the context must follow."""
    path = marked_cube(tmp_path / "cube.glb")
    views = rt.orbit_views("t")[:2]
    first = rt.render_views(path, renderer, views)
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(images=rt.render_views(path, renderer, views)))
    thread.start()
    thread.join()
    assert np.array_equal(out["images"], first)  # and deterministic


def test_supersampling_smooths_edges(tmp_path):
    path = marked_cube(tmp_path / "cube.glb")
    views = rt.orbit_views("aa")[1:2]
    sharp = rt.render_views(path, rt.MeshRenderer(platform="egl"), views)
    smooth = rt.render_views(path, rt.MeshRenderer(platform="egl", supersample=2), views)
    assert len(np.unique(smooth.reshape(-1, 3), axis=0)) > len(np.unique(sharp.reshape(-1, 3), axis=0))


def test_gltf_with_external_buffers_and_textured_obj_render_like_the_glb(tmp_path, renderer):
    """The same textured crate as GLB, as .gltf + .bin files, and as .obj + .mtl + .png."""
    scene = trimesh.load_scene(SAMPLES / "crate.glb", process=False)
    for name, data in scene.export(file_type="gltf").items():
        (tmp_path / name).write_bytes(data)
    obj_dir = tmp_path / "obj"
    obj_dir.mkdir()
    scene.to_geometry().export(obj_dir / "crate.obj")
    assert (obj_dir / "material.mtl").exists() and list(obj_dir.glob("*.png"))
    views = rt.orbit_views("crate", elevation_range_deg=(0.0, 0.0))[:1]
    glb = rt.render_views(str(SAMPLES / "crate.glb"), renderer, views)
    for path in (tmp_path / "model.gltf", obj_dir / "crate.obj"):
        other = rt.render_views(str(path), renderer, views)
        diff = np.abs(other.astype(int) - glb.astype(int))
        assert diff.mean() < 3, f"{path.name} renders differently from the GLB"


def test_default_metalness_is_capped_so_objects_are_not_black(tmp_path, renderer):
    """glTF's default metallicFactor is 1: uncapped, a glossy red ball reflects only the lights."""
    ball = trimesh.creation.icosphere(subdivisions=3)
    ball.visual = trimesh.visual.TextureVisuals(
        material=trimesh.visual.material.PBRMaterial(baseColorFactor=[200, 40, 40, 255], roughnessFactor=0.3)
    )
    path = tmp_path / "ball.glb"
    ball.export(path)
    loaded = next(iter(trimesh.load_scene(path, process=False).geometry.values()))
    assert loaded.visual.material.metallicFactor is None  # the file leaves it to the default
    views = rt.orbit_views("ball")[:1]
    metal = rt.MeshRenderer(platform="egl", max_metallic=1.0)
    dull, shiny = rt.render_views(str(path), renderer, views), rt.render_views(str(path), metal, views)
    metal.close()
    fg = (dull != 255).any(-1)
    assert dull[fg].mean() > 1.3 * shiny[fg].mean()  # uncapped: ~1.45x darker
    red = dull[fg].astype(int)
    assert (red[:, 0] > red[:, 1] + 60).mean() > 0.9  # and it is red


def test_closing_one_renderer_leaves_the_others_working(tmp_path, renderer):
    """pyrender's delete() terminates the process's EGL display; ours must not (Beam tears DoFns
    down one by one while others in the same process keep rendering)."""
    path = marked_cube(tmp_path / "cube.glb")
    views = rt.orbit_views("close")[:1]
    before = rt.render_views(path, renderer, views)
    other = rt.MeshRenderer(platform="egl")
    rt.render_views(path, other, views)
    other.close()
    del other
    assert np.array_equal(rt.render_views(path, renderer, views), before)


def test_osmesa_renders_the_same_object(tmp_path, renderer):
    """PYOPENGL_PLATFORM is fixed per process, so OSMesa runs in a child process."""
    import subprocess
    import sys

    import OpenGL

    if tuple(int(x) for x in OpenGL.__version__.split(".")[:3]) < (3, 1, 7):
        pytest.skip("OSMesa needs PyOpenGL >= 3.1.7 (scripts/setup.sh installs it)")
    path = marked_cube(tmp_path / "cube.glb")
    out = tmp_path / "osmesa.npy"
    code = (
        f"import numpy as np; from uvd.transforms import render as rt; "
        f"r = rt.MeshRenderer(platform='osmesa'); "
        f"np.save({str(out)!r}, rt.render_views({path!r}, r, rt.orbit_views('os')[:3])); r.close()"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYOPENGL_PLATFORM"}
    subprocess.run(
        [sys.executable, "-c", code], check=True, env=env, timeout=120, cwd=Path(__file__).resolve().parents[2]
    )
    osmesa, egl = np.load(out), rt.render_views(path, renderer, rt.orbit_views("os")[:3])
    fg_os, fg_egl = (osmesa != 255).any(-1), (egl != 255).any(-1)
    assert (fg_os & fg_egl).sum() / (fg_os | fg_egl).sum() > 0.97  # same silhouette (EGL has MSAA)
    assert np.abs(osmesa.astype(int) - egl.astype(int))[fg_os & fg_egl].mean() < 6
