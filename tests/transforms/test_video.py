"""Clip planning: which frames, at which stride, seeded per video id; no decoding here."""

from __future__ import annotations

import numpy as np
import pytest

from uvd.transforms import video as vt


def _plan(lo=0, hi=480, stride=10, clips=1, video_id="v", seed=0, **kw):
    return vt.plan_clips(lo, hi, stride, clips, vt.clip_rng(seed, video_id, stride), **kw)


@pytest.mark.parametrize("stride", [10, 20, 30])
def test_a_clip_is_16_ascending_frames_at_the_stride_inside_the_window(stride):
    clips, missing = _plan(lo=40, hi=1000, stride=stride, clips=2)
    assert missing == 0 and len(clips) == 2
    for i, clip in enumerate(clips):
        frames = np.array(clip.frames)
        assert clip.stride == stride and clip.index == i
        assert len(frames) == vt.CLIP_LENGTH
        assert np.all(np.diff(frames) == stride)
        assert frames[0] >= 40 and frames[-1] < 1000


def test_clips_of_one_stride_never_overlap_and_come_in_time_order():
    for video_id in map(str, range(50)):
        clips, _ = _plan(hi=1000, stride=20, clips=3, video_id=video_id)
        spans = [(c.frames[0], c.frames[-1]) for c in clips]
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:])), spans


def test_same_video_id_and_seed_give_the_same_frames_others_differ():
    first = _plan(video_id="abc", seed=3)[0]
    assert _plan(video_id="abc", seed=3)[0] == first
    others = {_plan(video_id=f"vid{i}", seed=3)[0][0].frames[0] for i in range(20)}
    assert len(others) > 5, "starts must depend on the video id"
    assert _plan(video_id="abc", seed=4)[0] != first or _plan(video_id="abc", seed=5)[0] != first


def test_random_starts_cover_the_whole_slack():
    # 480 frames, one clip at stride 10 spans 151: starts range over 0..329.
    starts = [_plan(video_id=str(i))[0][0].frames[0] for i in range(300)]
    assert min(starts) < 33 and max(starts) > 296


def test_zero_clips_means_every_non_overlapping_clip_that_fits():
    clips, missing = _plan(hi=1000, stride=10, clips=0)
    assert len(clips) == 1000 // vt.clip_span(10) == 6 and missing == 0


def test_asking_for_more_clips_than_fit_reports_the_rest_missing():
    clips, missing = _plan(hi=400, stride=10, clips=5)  # 400 // 151 = 2 fit
    assert len(clips) == 2 and missing == 3


def test_too_short_video_yields_nothing_and_counts_every_asked_clip():
    assert _plan(hi=150, stride=10, clips=1) == ([], 1)  # needs 151 frames
    assert _plan(hi=150, stride=10, clips=3) == ([], 3)
    assert _plan(hi=0, stride=10, clips=0) == ([], 1)
    clips, _ = _plan(hi=151, stride=10)
    assert clips[0].frames == tuple(range(0, 151, 10))


def test_min_length_allows_one_shorter_clip_of_what_fits():
    clips, missing = _plan(hi=100, stride=10, clips=2, min_length=8)
    assert len(clips) == 1 and missing == 1
    assert len(clips[0].frames) == 10 and clips[0].frames[-1] < 100
    assert _plan(hi=60, stride=10, min_length=8) == ([], 1)  # 6 frames < 8


def test_even_placement_is_centred_and_needs_no_randomness():
    clips, _ = vt.plan_clips(0, 200, 10, 1, np.random.default_rng(0), placement="even")
    assert clips[0].frames[0] == (200 - 151) // 2


@pytest.mark.parametrize("kwargs", [dict(stride=0), dict(clips=-1), dict(min_length=17), dict(placement="middle")])
def test_bad_plans_raise(kwargs):
    with pytest.raises(ValueError):
        _plan(**kwargs)


def test_frame_window_from_kinetics_seconds():
    cfr = np.arange(300) / 30.0
    assert vt.frame_window(cfr) == (0, 300)
    assert vt.frame_window(cfr, 2.0, 5.0) == (60, 150)
    assert vt.frame_window(np.arange(300) / 25.0, 1.5, 100.0) == (38, 300)  # end clamps to the video
    assert vt.frame_window(cfr, 20.0, 30.0) == (300, 300)  # past the end: empty
    assert vt.frame_window(cfr, -1.0, None) == (0, 300)
    vfr = np.concatenate([np.arange(60) / 30.0, 2.0 + np.arange(120) / 60.0])  # 30 fps, then 60 fps
    assert vt.frame_window(vfr, 2.0, 3.0) == (60, 120)


def test_reduced_size_keeps_aspect_and_never_upscales():
    assert vt.reduced_size(1920, 1080, 256) == (455, 256)
    assert vt.reduced_size(1080, 1920, 256) == (256, 455)
    assert vt.reduced_size(320, 240, 256) is None
    assert vt.reduced_size(1920, 1080, 256, mode="squash") == (256, 256)
    assert vt.reduced_size(200, 100, 256, mode="squash") is None


def test_group_clips_keeps_neighbours_in_time_together():
    clips = [
        vt.Clip(s, i, tuple(range(start, start + 15 * s + 1, s)))
        for s, i, start in [(30, 0, 5), (10, 0, 300), (10, 1, 0), (20, 0, 100), (10, 2, 600)]
    ]
    groups = vt.group_clips(clips, 2)
    assert [[c.frames[0] for c in g] for g in groups] == [[0, 5], [100, 300], [600]]
