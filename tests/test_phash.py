"""pHash: near-identical frames hash alike, different scenes do not."""
from __future__ import annotations

from starsort import cluster

from .analysis_helpers import run


def test_two_frames_of_a_burst_hash_within_a_few_bits_and_other_scenes_far_apart():
    a = run("SonySLT-A55__DSC3755.JPG", upto="phash").phash
    b = run("SonySLT-A55__DSC3756.JPG", upto="phash").phash
    other = run("106_NIKON-D3400-35MM_S.JPG", upto="phash").phash
    assert len(a) == 16 and int(a, 16) >= 0
    assert cluster.hamming(a, b) <= 2
    assert cluster.hamming(a, other) > 16


def test_the_hash_is_the_same_every_time_and_its_bands_rebuild_it():
    h1 = run("ivan.jpg", upto="phash").phash
    h2 = run("ivan.jpg", upto="phash").phash
    assert h1 == h2
    b = cluster.bands(h1)
    assert f"{b[0]:04x}{b[1]:04x}{b[2]:04x}{b[3]:04x}" == h1
