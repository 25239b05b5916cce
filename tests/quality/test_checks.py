"""PSNR, code diversity, histograms and the sequence checks on frames with known defects."""

from __future__ import annotations

import numpy as np

from uvd.quality import fingerprint as F
from uvd.quality import learn, sequence, testset


def test_psnr_and_distinct_codes():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0, 0] = 110  # one error of 10 over 192 values: MSE 100/192
    assert abs(learn.psnr(a, b) - 10 * np.log10(255**2 / (100 / 192))) < 1e-4
    assert learn.psnr(a, a) == 99.0
    assert learn.distinct_codes(np.array([3, 3, 5, 8191])) == 3


def test_histogram_bins_add_up():
    edges = learn.PSNR_EDGES
    h = None
    for v in (5.0, 10.0, 25.3, 41.0, 99.0):
        h = learn.add_to_histogram(h, v, edges)
    assert sum(h) == 5 and h[0] == 1 and h[-1] == 2 and len(learn.bin_labels(edges)) == len(h)
    assert len(learn.spark(h)) == len(h)


def test_sequence_checks_find_frozen_blank_and_cuts():
    bases = testset.sample_photos(2)
    frames, cuts = testset.cut_clips(bases, frames_per_shot=(8, 9), seed=0)
    thumbs = F.thumbnail(frames)[:16]
    thumbs[3] = thumbs[2]  # a repeated frame
    thumbs[12] = 0  # a black frame
    rep = sequence.check_sequence(thumbs)
    assert 3 in rep.frozen and rep.blank == [12] and rep.black == [12]
    assert 8 in rep.cuts and set(rep.cuts) <= {8, 12, 13}  # the real cut; the black frame's edges
    assert sequence.cut_windows(16, [8]) == [(0, 8), (8, 16)]


def test_a_smooth_pan_has_no_cuts():
    frames, _ = testset.cut_clips(testset.sample_photos(1), frames_per_shot=(16, 17), seed=2)
    rep = sequence.check_sequence(F.thumbnail(frames))
    assert rep.cuts == [] and rep.blank == []
