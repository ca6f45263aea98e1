"""Encoding the images that galleries and events write: lossless PNG crops, JPEG context views."""

from __future__ import annotations

import cv2
import numpy as np

from ..select import TrackResult


def encode_image(image: np.ndarray, ext: str, jpeg_quality: int = 92) -> bytes:
    """An RGB image as the bytes of a ``.png`` or ``.jpg`` file."""
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext == ".jpg" else []
    ok, data = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OSError(f"could not encode a {ext} image")
    return data.tobytes()


def pick_images(result: TrackResult) -> list[tuple[np.ndarray, np.ndarray]]:
    """(aligned crop, context view) of each chosen frame, best first (none for a track with no
    pick: such a track may have no crops at all)."""
    chosen = result.chosen
    if not len(chosen):
        return []
    assert chosen.crops is not None and chosen.context is not None  # scored rows carry both
    return [(chosen.crops[i], chosen.context[i]) for i in range(len(chosen))]
