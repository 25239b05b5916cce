"""Build uvd/sample/annotations/ from the shared photos in uvd/sample/images (deterministic).

Run: .venv/bin/python uvd/sample/annotations/make_sample.py
Every annotation here is hand-made: coordinates read off the photos by eye (COCO boxes, polygons,
keypoints, the cat outline) and simple rules on top of them (label maps, depth, normals, edges,
rain, stereo shift, a painted style). See SOURCES.md. They are format samples that exercise every adapter, not
ground truth.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
PHOTOS = HERE.parent / "images"

# --- hand-made geometry (x, y in the photo's pixels) --------------------------------------------
POLYGONS = {
    "astronaut": {
        "person": [
            150,
            40,
            210,
            15,
            280,
            30,
            300,
            90,
            290,
            160,
            340,
            220,
            360,
            300,
            370,
            511,
            20,
            511,
            30,
            300,
            60,
            250,
            120,
            200,
            160,
            160,
            150,
            100,
        ],
        "shuttle": [395, 0, 440, 0, 450, 60, 455, 200, 470, 270, 365, 275, 360, 210, 385, 120],
    },
    "grace_hopper": {
        "person": [
            160,
            60,
            250,
            25,
            340,
            60,
            370,
            140,
            350,
            240,
            330,
            320,
            420,
            350,
            500,
            420,
            511,
            599,
            10,
            599,
            30,
            420,
            120,
            350,
            180,
            320,
            160,
            240,
            150,
            140,
        ],
    },
    "cameraman": {
        "person": [
            160,
            100,
            200,
            70,
            260,
            90,
            270,
            130,
            330,
            180,
            320,
            240,
            220,
            260,
            160,
            511,
            0,
            511,
            0,
            230,
            80,
            150,
            155,
            130,
        ],
    },
    "luispedro": {
        "person": [
            40,
            80,
            90,
            30,
            170,
            25,
            250,
            70,
            270,
            180,
            250,
            260,
            290,
            330,
            299,
            376,
            0,
            376,
            0,
            330,
            40,
            290,
            45,
            200,
        ],
    },
    "coffee": {
        "cup": [
            175,
            60,
            230,
            25,
            330,
            20,
            400,
            50,
            410,
            110,
            390,
            200,
            360,
            240,
            250,
            255,
            240,
            300,
            200,
            305,
            195,
            240,
            180,
            190,
        ],
        "spoon": [405, 70, 420, 70, 390, 230, 405, 290, 370, 325, 330, 310, 335, 260, 370, 235],
    },
    "chelsea_cat": {
        "cat": [30, 0, 380, 0, 370, 80, 350, 160, 330, 230, 300, 270, 260, 299, 60, 299, 20, 200, 30, 100],
    },
}
# COCO-17 keypoints (x, y, v): v = 2 visible, 1 labelled but occluded, 0 not labelled.
KEYPOINTS = {
    "astronaut": [
        (222, 128, 2),
        (243, 103, 2),
        (203, 103, 2),
        (272, 115, 1),
        (175, 115, 1),
        (335, 290, 2),
        (85, 280, 2),
        (0, 0, 0),
        (45, 420, 2),
        (0, 0, 0),
        (150, 485, 2),
    ]
    + [(0, 0, 0)] * 6,
    "grace_hopper": [
        (265, 240, 2),
        (310, 195, 2),
        (215, 195, 2),
        (345, 215, 1),
        (170, 220, 2),
        (430, 370, 2),
        (90, 370, 2),
    ]
    + [(0, 0, 0)] * 10,
    "cameraman": [
        (248, 170, 2),
        (0, 0, 0),
        (235, 140, 2),
        (0, 0, 0),
        (190, 138, 2),
        (0, 0, 0),
        (135, 190, 2),
        (0, 0, 0),
        (180, 262, 2),
        (320, 185, 1),
        (300, 205, 2),
    ]
    + [(0, 0, 0)] * 6,
    "luispedro": [(95, 215, 2), (145, 158, 2), (65, 170, 2), (245, 210, 2), (0, 0, 0), (250, 350, 1), (20, 360, 1)]
    + [(0, 0, 0)] * 10,
}
COCO_CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 5, "name": "airplane", "supercategory": "vehicle"},
    {"id": 17, "name": "cat", "supercategory": "animal"},
    {"id": 47, "name": "cup", "supercategory": "kitchen"},
    {"id": 50, "name": "spoon", "supercategory": "kitchen"},
]
CATEGORY_OF = {"person": 1, "shuttle": 5, "cat": 17, "cup": 47, "spoon": 50}
KEYPOINT_NAMES = [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
]
# ADE20K classes, 1-based as in the PNGs: wall 1, building 2, sky 3, floor 4, grass 10, person 13,
# table 16, airplane 91, plate 143, animal 127, flag 150.
ADE = {
    "wall": 1,
    "building": 2,
    "sky": 3,
    "grass": 10,
    "person": 13,
    "table": 16,
    "airplane": 91,
    "animal": 127,
    "plate": 143,
    "flag": 150,
}


def photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(PHOTOS / f"{name}.jpg").convert("RGB"))


def poly(points: list[int]) -> np.ndarray:
    return np.array(points, np.int32).reshape(-1, 2)


def fill(mask_shape: tuple[int, int], points: list[int]) -> np.ndarray:
    m = np.zeros(mask_shape, np.uint8)
    cv2.fillPoly(m, [poly(points)], 1)
    return m.astype(bool)


def bbox(points: list[int]) -> list[float]:
    p = poly(points)
    x0, y0 = p.min(axis=0)
    x1, y1 = p.max(axis=0) + 1
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


# --- COCO ---------------------------------------------------------------------------------------
def make_coco(out: Path) -> None:
    images, anns, kp_images, kp_anns = [], [], [], []
    next_ann = 1
    for image_id, (name, objects) in enumerate(sorted(POLYGONS.items()), start=1):
        h, w = photo(name).shape[:2]
        images.append({"id": image_id, "file_name": f"{name}.jpg", "height": h, "width": w})
        for obj, points in objects.items():
            m = fill((h, w), points)
            anns.append(
                {
                    "id": next_ann,
                    "image_id": image_id,
                    "category_id": CATEGORY_OF[obj],
                    "bbox": bbox(points),
                    "area": float(m.sum()),
                    "iscrowd": 0,
                    "segmentation": [[float(v) for v in points]],
                }
            )
            next_ann += 1
            if obj == "person" and name in KEYPOINTS:
                if image_id not in {im["id"] for im in kp_images}:
                    kp_images.append(images[-1])
                kps = [float(v) for p in KEYPOINTS[name] for v in p]
                kp_anns.append(
                    {**anns[-1], "keypoints": kps, "num_keypoints": sum(1 for p in KEYPOINTS[name] if p[2] > 0)}
                )
    # Deliberately bad entries: each must become a failure row, never a crash.
    bad = [
        ("coffee.jpg", 600, 400, {"bbox": [500.0, 300.0, 200.0, 200.0], "category_id": 47}),  # box outside
        ("chelsea_cat.jpg", 300, 451, {"bbox": [10.0, 10.0, -5.0, 20.0], "category_id": 17}),  # negative size
        ("flower.jpg", 427, 640, {"bbox": [10.0, 10.0, 50.0, 50.0], "category_id": 999}),  # unknown category
        ("missing_photo.jpg", 100, 100, {"bbox": [1.0, 1.0, 5.0, 5.0], "category_id": 1}),
    ]  # missing file
    for i, (file_name, h, w, ann) in enumerate(bad, start=901):
        images.append({"id": i, "file_name": file_name, "height": h, "width": w})
        anns.append({"id": next_ann, "image_id": i, "area": 100.0, "iscrowd": 0, "segmentation": [], **ann})
        next_ann += 1
    info = {"description": "uvd hand-made sample (see SOURCES.md)"}
    (out / "instances.json").write_text(
        json.dumps({"info": info, "images": images, "annotations": anns, "categories": COCO_CATEGORIES}, indent=0)
    )
    person = {
        **COCO_CATEGORIES[0],
        "keypoints": KEYPOINT_NAMES,
        "skeleton": [
            [16, 14],
            [14, 12],
            [17, 15],
            [15, 13],
            [12, 13],
            [6, 12],
            [7, 13],
            [6, 7],
            [6, 8],
            [7, 9],
            [8, 10],
            [9, 11],
            [2, 3],
            [1, 2],
            [1, 3],
            [2, 4],
            [3, 5],
            [4, 6],
            [5, 7],
        ],
    }
    (out / "person_keypoints.json").write_text(
        json.dumps({"info": info, "images": kp_images, "annotations": kp_anns, "categories": [person]}, indent=0)
    )


# --- dense maps: segmentation, depth, normals, edges ---------------------------------------------
def labels_for(name: str, img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    r, g, b = (img[..., i].astype(int) for i in range(3))
    lab = np.full((h, w), ADE["wall"], np.uint8)
    yy, xx = np.mgrid[:h, :w]
    if name == "astronaut":
        lab[(xx < 95) & (yy < 470)] = ADE["flag"]
        lab[fill((h, w), POLYGONS[name]["shuttle"])] = ADE["airplane"]
    elif name == "grace_hopper":
        lab[(b > r + 40) & (xx > 200)] = ADE["sky"]
        lab[(xx < 200) & ~((b > r + 40) & (xx > 200))] = ADE["flag"]
    elif name == "cameraman":
        lab[yy < 190] = ADE["sky"]
        lab[(yy >= 160) & (yy < 230) & (r < 170)] = ADE["building"]
        lab[yy >= 230] = ADE["grass"]
    elif name == "coffee":
        lab[:] = ADE["table"]
        lab[fill((h, w), [90, 140, 180, 80, 420, 90, 480, 200, 440, 330, 300, 385, 150, 370, 80, 280])] = ADE["plate"]
    for obj, points in POLYGONS[name].items():
        if obj == "person":
            lab[fill((h, w), points)] = ADE["person"]
    lab[:2] = 0  # a thin unlabelled band (0 = ignore) as real ADE maps have
    return lab


def depth_for(name: str, labels: np.ndarray) -> np.ndarray:
    """Hand-made depth in metres: background plane, objects nearer, a bulge on the person."""
    h, w = labels.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    if name == "cameraman":
        horizon = 215.0
        depth = np.where(yy > horizon + 2, 600.0 / np.maximum(yy - horizon, 1.0), 0.0)  # ground plane
        depth[labels == ADE["building"]] = 60.0
        depth[labels == ADE["sky"]] = 0.0  # invalid
    else:
        depth = np.full((h, w), 4.0) + (yy / h) * 0.5
        depth[labels == ADE["flag"]] = 3.5
        depth[labels == ADE["airplane"]] = 3.0
        depth[labels == ADE["plate"]] = 0.7 + 0.3 * (1 - yy[labels == ADE["plate"]] / h)
    person = labels == ADE["person"]
    if person.any():
        cy, cx = yy[person].mean(), xx[person].mean()
        r2 = ((yy - cy) / (0.6 * h)) ** 2 + ((xx - cx) / (0.5 * w)) ** 2
        depth[person] = 1.8 + 0.4 * np.clip(r2[person], 0, 1)
    return depth


def normals_from_depth(depth: np.ndarray, focal: float) -> np.ndarray:
    """Camera-space normals from a depth map by finite differences (pinhole, focal in px)."""
    dzdx = np.gradient(depth, axis=1) * focal / np.maximum(depth, 1e-3)
    dzdy = np.gradient(depth, axis=0) * focal / np.maximum(depth, 1e-3)
    n = np.stack([-dzdx, -dzdy, np.ones_like(depth)], axis=2)
    n /= np.linalg.norm(n, axis=2, keepdims=True)
    n[depth <= 0] = 0
    return n


def make_dense(out: Path) -> None:
    for sub in ("images", "seg", "depth", "normals", "edges"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for name in ("astronaut", "cameraman", "coffee", "grace_hopper"):
        img = photo(name)
        shutil.copy(PHOTOS / f"{name}.jpg", out / "images" / f"{name}.jpg")
        labels = labels_for(name, img)
        Image.fromarray(labels, mode="L").save(out / "seg" / f"{name}.png", optimize=True)
        depth = depth_for(name, labels)
        Image.fromarray(np.round(depth * 1000).clip(0, 65535).astype(np.uint16)).save(out / "depth" / f"{name}.png")
        n = normals_from_depth(depth, focal=max(img.shape[:2]))
        rgb = np.where(n.any(axis=2, keepdims=True), np.round((n + 1) / 2 * 255), 0).astype(np.uint8)
        Image.fromarray(rgb).save(out / "normals" / f"{name}.png", optimize=True)
        edges = (cv2.Canny(labels, 0, 1) > 0).astype(np.uint8) * 255  # label boundaries
        Image.fromarray(edges, mode="L").save(out / "edges" / f"{name}.png", optimize=True)
    # An annotation with no image: reported as "unmatched_annotation".
    Image.fromarray(np.ones((8, 8), np.uint8)).save(out / "seg" / "no_such_photo.png")


# --- paired folders -------------------------------------------------------------------------------
def small(img: np.ndarray, side: int = 320) -> np.ndarray:
    h, w = img.shape[:2]
    s = side / max(h, w)
    return cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def save_jpg(img: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=85)


def rain(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rain streaks: thin bright slanted lines, motion-blurred, added to the photo."""
    h, w = img.shape[:2]
    layer = np.zeros((h, w), np.float32)
    for _ in range(int(h * w / 600)):
        x, y, length = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(8, 20))
        cv2.line(layer, (x, y), (x + length // 4, y + length), float(rng.uniform(0.4, 0.9)), 1)
    layer = cv2.GaussianBlur(layer, (3, 3), 0)
    return np.clip(img.astype(np.float32) + 140 * layer[..., None], 0, 255).astype(np.uint8)


def make_pairs(out: Path) -> None:
    rng = np.random.default_rng(0)
    derain = ["china", "flower", "rocket", "coffee", "chelsea_cat"]
    for name in derain:
        clean = small(photo(name))
        save_jpg(rain(clean, rng), out / "deraining" / "input" / f"{name}.jpg")
        save_jpg(clean, out / "deraining" / "target" / f"{name}.jpg")
    save_jpg(small(photo("astronaut")), out / "deraining" / "input" / "astronaut_no_target.jpg")  # unmatched
    for name in ["china", "rocket", "flower"]:
        img = small(photo(name), 336)
        h, w = img.shape[:2]
        shift = 16  # constant disparity: a fronto-parallel stand-in
        save_jpg(img[:, shift:w], out / "stereo" / "input" / f"{name}.jpg")  # left view
        save_jpg(img[:, 0 : w - shift], out / "stereo" / "target" / f"{name}.jpg")  # right view
    save_jpg(small(photo("coffee")), out / "stereo" / "target" / "coffee_no_left.jpg")  # unmatched
    for name in STYLE_PHOTOS:
        img = small(photo(name))
        save_jpg(img, out / "style_transfer" / "input" / f"{name}.jpg")
        save_jpg(painted(img), out / "style_transfer" / "target" / f"{name}.jpg")


STYLE_PHOTOS = ["astronaut", "chelsea_cat", "coffee", "grace_hopper"]


def painted(img: np.ndarray) -> np.ndarray:
    """One fixed style for every pair (a style-transfer task is photo -> the same style): OpenCV's
    edge-preserving stylization (a watercolour look), colours posterised to 6 levels and warmed.
    Deterministic and model-free: a stand-in for a neural style, not one."""
    soft = cv2.stylization(np.ascontiguousarray(img[..., ::-1]), sigma_s=60, sigma_r=0.45)[..., ::-1]
    levels = np.round(soft.astype(np.float32) / 51.0) * 51.0
    warm = levels * np.array([1.08, 1.0, 0.85], np.float32)
    return np.clip(warm, 0, 255).astype(np.uint8)


# --- DAVIS-style clip -----------------------------------------------------------------------------
DAVIS_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * (256 * 3 - 12)


def make_video(out: Path, frames: int = 10) -> None:
    img = photo("chelsea_cat")
    h, w = img.shape[:2]
    cat = fill((h, w), POLYGONS["chelsea_cat"]["cat"])
    eye = fill((h, w), [135, 85, 205, 85, 205, 150, 135, 150])  # a second object: the left eye
    ids = np.where(eye, 2, np.where(cat, 1, 0)).astype(np.uint8)
    cw, ch = 320, 240
    for i in range(frames):
        x = round(i * (w - cw) / (frames - 1))
        y = round(i * (h - ch) / (frames - 1))
        save_jpg(img[y : y + ch, x : x + cw], out / "JPEGImages" / "cat_pan" / f"{i:05d}.jpg")
        mask = Image.fromarray(ids[y : y + ch, x : x + cw], mode="P")
        mask.putpalette(DAVIS_PALETTE)
        (out / "Annotations" / "cat_pan").mkdir(parents=True, exist_ok=True)
        mask.save(out / "Annotations" / "cat_pan" / f"{i:05d}.png", optimize=True)


def main() -> None:
    for sub in ("coco", "dense", "pairs", "video"):
        shutil.rmtree(HERE / sub, ignore_errors=True)
        (HERE / sub).mkdir(parents=True)
    make_coco(HERE / "coco")
    make_dense(HERE / "dense")
    make_pairs(HERE / "pairs")
    make_video(HERE / "video")
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"wrote {HERE} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
