"""Encoding the images that galleries and events write: lossless PNG crops, JPEG context views."""

from __future__ import annotations

import cv2
import numpy as np


def encode_image(image: np.ndarray, ext: str, jpeg_quality: int = 92) -> bytes:
    """An RGB image as the bytes of a ``.png`` or ``.jpg`` file."""
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext == ".jpg" else []
    ok, data = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OSError(f"could not encode a {ext} image")
    return data.tobytes()
