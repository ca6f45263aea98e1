"""Make the tiny sample media in this folder from public-domain sources.

astronaut.jpg: scikit-image's astronaut photo (Eileen Collins, NASA, public domain), 512x512.
Run: python samples/make_samples.py   (needs scikit-image, a test dependency)
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent


def make_astronaut() -> Path:
    from skimage import data

    path = HERE / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(path, quality=90)
    return path


if __name__ == "__main__":
    print(make_astronaut())
