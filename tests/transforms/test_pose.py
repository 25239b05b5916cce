import numpy as np

from uvd.transforms.pose import COCO_TO_OPENPOSE, JOINT_COLORS, LIMB_COLORS, LIMBS, coco_to_openpose, render_pose


def _coco_person():
    kp = np.zeros((1, 17, 3))
    kp[0, :, 0] = np.arange(17) * 10 + 5
    kp[0, :, 1] = np.arange(17) * 3 + 7
    kp[0, :, 2] = 2
    return kp


def test_coco17_to_openpose18_mapping():
    kp = _coco_person()
    op = coco_to_openpose(kp)
    assert op.shape == (1, 18, 3)
    expected = {
        0: 0,
        2: 6,
        3: 8,
        4: 10,
        5: 5,
        6: 7,
        7: 9,
        8: 12,
        9: 14,
        10: 16,
        11: 11,
        12: 13,
        13: 15,
        14: 2,
        15: 1,
        16: 4,
        17: 3,
    }
    for o, c in expected.items():
        assert op[0, o].tolist() == kp[0, c].tolist(), o
        assert COCO_TO_OPENPOSE[o] == c
    assert op[0, 1, :2].tolist() == ((kp[0, 5, :2] + kp[0, 6, :2]) / 2).tolist()


def test_neck_hidden_unless_both_shoulders_visible():
    kp = _coco_person()
    kp[0, 5, 2] = 0
    assert coco_to_openpose(kp)[0, 1, 2] == 0


def test_limb_colour_and_endpoints():
    # Right upper arm: OpenPose 2 (r_shoulder = COCO 6) -> 3 (r_elbow = COCO 8), limb index 2.
    kp = np.zeros((1, 17, 3))
    kp[0, 6] = [60, 100, 1.0]
    kp[0, 8] = [160, 100, 1.0]
    canvas = render_pose(kp, 256, 256)
    limb = LIMBS.index((2, 3))
    assert canvas[100, 110].tolist() == LIMB_COLORS[limb].tolist()  # middle of the limb
    assert canvas[100, 60].tolist() == JOINT_COLORS[2].tolist()  # shoulder joint on top
    assert canvas[100, 160].tolist() == JOINT_COLORS[3].tolist()  # elbow joint
    assert canvas[100, 50].tolist() == [0, 0, 0] and canvas[100, 170].tolist() == [0, 0, 0]
    assert canvas[110, 110].tolist() == [0, 0, 0]  # limb is ~4 px wide
    assert LIMB_COLORS[limb].tolist() == [153, 102, 0]  # 0.6 * (255, 170, 0)


def test_invisible_joints_draw_nothing():
    kp = np.zeros((1, 17, 3))
    kp[0, 6] = [60, 100, 1.0]
    kp[0, 8] = [160, 100, 0.1]  # below the threshold
    canvas = render_pose(kp, 256, 256, score_threshold=0.3)
    assert canvas[100, 110].tolist() == [0, 0, 0]
    assert canvas[100, 160].tolist() == [0, 0, 0]
    assert canvas[100, 60].tolist() == JOINT_COLORS[2].tolist()
    assert not render_pose(np.zeros((0, 17, 3)), 32, 32).any()


def test_full_skeleton_uses_only_openpose_colours():
    canvas = render_pose(_coco_person() * [1.5, 1.5, 1], 256, 256)
    allowed = {tuple(c) for c in JOINT_COLORS} | {tuple(c) for c in LIMB_COLORS} | {(0, 0, 0)}
    assert {tuple(c) for c in canvas.reshape(-1, 3)} <= allowed
