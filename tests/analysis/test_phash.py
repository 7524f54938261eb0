"""pHash: near-identical frames hash alike, different scenes do not; bands and distance."""
from __future__ import annotations

import re

from starsort.analysis import phash

from .stages import run


def test_the_hash_is_sixteen_lowercase_hex_digits_and_the_same_every_time():
    h1 = run("ivan.jpg", upto="phash").phash
    h2 = run("ivan.jpg", upto="phash").phash
    assert re.fullmatch(r"[0-9a-f]{16}", h1)
    assert h1 == h2


def test_two_frames_of_a_burst_hash_within_a_few_bits_and_other_scenes_far_apart():
    a = run("SonySLT-A55__DSC3755.JPG", upto="phash").phash
    b = run("SonySLT-A55__DSC3756.JPG", upto="phash").phash
    other = run("106_NIKON-D3400-35MM_S.JPG", upto="phash").phash
    assert phash.distance(a, b) <= 2
    assert phash.distance(a, other) > 16


def test_a_sharp_frame_and_its_blurred_siblings_stay_close():
    s, f, m = (run(f"106_NIKON-D3400-35MM_{k}.JPG", upto="phash").phash for k in "SFM")
    assert max(phash.distance(s, f), phash.distance(s, m)) <= 10


def test_the_bands_are_four_16_bit_slices_most_significant_first():
    assert phash.bands("0123456789abcdef") == (0x0123, 0x4567, 0x89ab, 0xcdef)
    h = run("ivan.jpg", upto="phash").phash
    assert "".join(f"{b:04x}" for b in phash.bands(h)) == h


def test_distance_counts_differing_bits():
    assert phash.distance("0000000000000000", "0000000000000000") == 0
    assert phash.distance("0000000000000000", "ffffffffffffffff") == 64
    assert phash.distance("8000000000000001", "0000000000000000") == 2
    a, b = "00000000000000f0", "000000000000000f"
    assert phash.distance(a, b) == phash.distance(b, a) == 8
