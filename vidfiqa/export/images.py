"""Encoding the images that galleries and events write: lossless PNG crops, JPEG context views."""

from __future__ import annotations

import cv2
import numpy as np

from ..select import TrackResult

JPEG_QUALITY = 92


def encode_image(image: np.ndarray | bytes, ext: str, jpeg_quality: int = JPEG_QUALITY) -> bytes:
    """An RGB image as the bytes of a ``.png`` or ``.jpg`` file; bytes are taken as already
    encoded (candidate pools keep context views as JPEG, see ``select/pool.py``)."""
    if isinstance(image, bytes):
        return image
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext == ".jpg" else []
    ok, data = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OSError(f"could not encode a {ext} image")
    return data.tobytes()


def pick_images(result: TrackResult) -> list[tuple[np.ndarray, np.ndarray | bytes]]:
    """(aligned crop, context view) of each chosen frame, best first (none for a track with no
    pick: such a track may have no crops at all).  A context view may be JPEG bytes."""
    chosen = result.chosen
    if not len(chosen):
        return []
    assert chosen.crops is not None and chosen.context is not None  # scored rows carry both
    return [(chosen.crops[i], chosen.context[i]) for i in range(len(chosen))]
