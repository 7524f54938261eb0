"""Each state has its own icon, told apart by colour and by a mark."""
from __future__ import annotations

import numpy as np

from starsort.tray import icons


def _centre(state: str, queued: int = 0) -> tuple[int, int, int]:
    img = np.asarray(icons.draw(state, queued).convert("RGBA"))
    return tuple(int(v) for v in img[12, icons.SIZE // 2][:3])      # inside the disc, above any mark


def test_each_state_has_its_own_colour():
    colours = {s: _centre(s) for s in ("idle", "working", "paused", "error", "down")}
    assert len(set(colours.values())) == 5
    r, g, b = colours["idle"]
    assert g > r + 60 and g > b + 60
    r, g, b = colours["working"]
    assert r > 200 and 100 < g < 200 and b < 80
    r, g, b = colours["error"]
    assert r > 180 and g < 80 and b < 80


def test_the_working_icon_carries_the_queue_count_and_the_others_a_mark():
    plain = np.asarray(icons.draw("working", 0))
    for n in (7, 42, 1234, 250_000):
        assert not np.array_equal(np.asarray(icons.draw("working", n)), plain), n
    assert not np.array_equal(np.asarray(icons.draw("working", 7)), np.asarray(icons.draw("working", 42)))
    for state in ("paused", "error", "down"):
        img = np.asarray(icons.draw(state))
        white = (img[..., :3] > 240).all(axis=-1) & (img[..., 3] > 0)
        centre = white[20:44, 20:44]
        assert centre.sum() > 40, state                  # a white mark in the middle, not only the rim
    assert icons._count(1234) == "1.2k" and icons._count(250_000) == "99k" and icons._count(12) == "12"
