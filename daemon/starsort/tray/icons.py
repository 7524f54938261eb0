"""The tray's icons, drawn with Pillow: a disc whose colour is the state.

    idle     green
    working  amber, with the queue count on it
    paused   grey, with a pause sign
    error    red, with "!"
    down     grey, crossed out

Colour is not the only signal (a colour-blind photographer, a monochrome
panel): working, paused, error and down each carry a mark as well.
"""
from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

SIZE = 64
COLOURS = {
    "idle": (46, 160, 67),
    "working": (230, 150, 20),
    "paused": (128, 128, 128),
    "error": (210, 40, 40),
    "down": (90, 90, 90),
}


def _font(px: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=px)
    except TypeError:       # Pillow < 10.1 has one size only
        return ImageFont.load_default()


def _count(n: int) -> str:
    if n < 1000:
        return str(n)
    if n < 10_000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    return f"{min(n // 1000, 99)}k"


def draw(state: str, queued: int = 0) -> Image.Image:
    img = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    colour = COLOURS.get(state, COLOURS["down"])
    d.ellipse((3, 3, SIZE - 4, SIZE - 4), fill=colour + (255,), outline=(255, 255, 255, 255), width=3)
    white = (255, 255, 255, 255)
    if state == "working" and queued:
        text = _count(queued)
        font = _font(30 if len(text) <= 2 else 22)
        d.text((SIZE / 2, SIZE / 2), text, fill=white, font=font, anchor="mm")
    elif state == "paused":
        d.rectangle((21, 18, 28, 46), fill=white)
        d.rectangle((36, 18, 43, 46), fill=white)
    elif state == "error":
        d.rectangle((28, 14, 36, 38), fill=white)
        d.rectangle((28, 43, 36, 51), fill=white)
    elif state == "down":
        d.line((14, 14, 50, 50), fill=white, width=7)
        d.line((14, 50, 50, 14), fill=white, width=7)
    return img
