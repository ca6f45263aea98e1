"""Reading still images robustly.

Users hand us whatever is on their disk: grayscale scans, 16-bit PNGs from cameras, CMYK JPEGs
from print workflows, phone photos with an EXIF rotation, 100-megapixel panoramas, and files that
are not images at all.  :func:`load_image` turns every readable one into an 8-bit RGB array and
every unreadable one into a one-line :class:`~vidfiqa.errors.InputError`.

Pillow does the decoding because it handles CMYK (with Adobe's inverted variant), 16-bit modes,
palettes, EXIF orientation and JPEG draft decoding (decoding a huge JPEG at 1/2, 1/4 or 1/8
resolution without ever holding the full image).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError

# .avif: Pillow decodes it from 11.3 on (its wheels bundle libavif); it was read when named but skipped in folders.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".jp2", ".avif"})

# Images are kept at most this many pixels on the long side after loading. Face detection runs at
# a few hundred pixels anyway; the cap bounds memory on panoramas and scans.
DEFAULT_MAX_SIDE = 4096
# The pixel budget: an image whose header claims more pixels than this is decoded at a reduced
# size where the format allows it (JPEG: 1/2..1/8 while decoding; JPEG 2000: its resolution
# levels) so that what is decoded fits, and otherwise refused in one line.  A 2.6 MB PNG can
# claim 30000x30000 pixels, 2.7 GB once decoded to RGB (a decompression bomb).  100 megapixels
# is 300 MB of RGB: a large panorama or scan passes.  VIDFIQA_MAX_PIXELS changes it.
PIXEL_BUDGET = 100_000_000
# Never even a reduced decode beyond this (a corrupt or hostile header).
MAX_PIXELS = 20_000_000_000


def pixel_budget() -> int:
    value = os.environ.get("VIDFIQA_MAX_PIXELS", "")
    return int(value) if value.isdigit() and int(value) > 0 else PIXEL_BUDGET


@dataclass(frozen=True)
class LoadedImage:
    """An RGB uint8 image plus how it relates to the file it came from."""

    path: Path
    pixels: np.ndarray  # (H, W, 3) uint8 RGB
    original_size: tuple[int, int]  # (width, height) of the file, after EXIF rotation
    scale: float  # original pixels per loaded pixel (>= 1; 1 when not downscaled)


def load_image(path: str | os.PathLike, max_side: int = DEFAULT_MAX_SIDE) -> LoadedImage:
    """Decode ``path`` into RGB uint8, downscaled so its long side is at most ``max_side``."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard; the budget is ours (_decode)
            with Image.open(path) as img:
                img = _decode(img, max_side, path)
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise InputError(f"{path}: not a readable image ({_short(err)})") from None
    except (OSError, ValueError, SyntaxError) as err:  # truncated/corrupt data surfaces as these
        raise InputError(f"{path}: cannot decode image ({_short(err)})") from None
    except MemoryError:
        raise InputError(f"{path}: image too large to decode in memory") from None
    pixels, original_size = img
    scale = max(original_size) / max(pixels.shape[1], pixels.shape[0])
    return LoadedImage(path=path, pixels=pixels, original_size=original_size, scale=float(scale))


def _decode(img: Image.Image, max_side: int, path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    width, height = img.size
    budget = pixel_budget()
    if img.format == "JPEG":
        # Decode at a reduced scale directly (1/2, 1/4 or 1/8): as small as still leaves at least
        # max_side pixels (the exact resize follows below), and smaller again if the budget needs it.
        scale = 1
        while scale < 8 and max(width, height) / (2 * scale) >= max_side:
            scale *= 2
        while scale < 8 and (width / scale) * (height / scale) > budget:
            scale *= 2
        if scale > 1:
            img.draft("RGB", (-(-width // scale), -(-height // scale)))
    decoded_w, decoded_h = img.size  # draft() has set the reduced size
    if img.format == "JPEG2000" and width * height > budget:
        levels = 0  # JPEG 2000 stores halved resolution levels: decode the first that fits
        while (width >> levels) * (height >> levels) > budget and levels < 16:
            levels += 1
        img.reduce = levels  # type: ignore[method-assign,assignment]
        decoded_w, decoded_h = width >> levels, height >> levels
    if decoded_w * decoded_h > budget:
        why = ("even at the smallest size it can be decoded at" if img.format in ("JPEG", "JPEG2000")
               else f"and {img.format or 'this format'} images cannot be decoded at a reduced size")
        raise InputError(f"{path}: {width}x{height} is {width * height / 1e6:.0f} megapixels, over the {budget / 1e6:.0f} megapixel budget "
                         f"{why} (shrink it first, or raise VIDFIQA_MAX_PIXELS)", path=path)
    # EXIF orientations 5-8 swap width and height.  (Only now: for a PNG, reading EXIF decodes
    # the whole image, so it must come after the budget check.)
    orientation = img.getexif().get(0x0112, 1) if hasattr(img, "getexif") else 1
    original_size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    img.load()
    img = ImageOps.exif_transpose(img)
    img = _to_rgb8(img)
    if max(img.size) > max_side:
        factor = max_side / max(img.size)
        img = img.resize((max(1, round(img.width * factor)), max(1, round(img.height * factor))), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(img, dtype=np.uint8).copy(), original_size


def _to_rgb8(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB (16-bit and float modes are rescaled, not clipped)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img).astype(np.float64)
        if img.mode.startswith("I;16"):
            arr = arr / 257.0  # full 16-bit range onto 8 bits
        else:
            lo, hi = np.nanmin(arr), np.nanmax(arr)
            arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        gray = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), mode="L")
        return gray.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite on white: transparent regions are usually background, and black would
        # create false dark edges around cut-out faces.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode == "RGB":
        return img
    if img.mode in ("RGB;16", "RGBA;16", "RGBX"):
        return img.convert("RGB")
    # L, 1, P, CMYK (Pillow handles Adobe-inverted CMYK JPEGs), YCbCr, LAB, HSV...
    return img.convert("RGB")


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def iter_image_paths(inputs: Iterable[str | os.PathLike]) -> Iterator[Path | InputError]:
    """Expand files and folders into image paths, in a stable order.

    Yields an :class:`InputError` (instead of raising) for an input that does not exist or a
    folder that holds no images, so the caller can report it and go on with the rest.  Files
    given explicitly are yielded whatever their suffix: ``load_image`` decides what they are.
    """
    for item in inputs:
        path = Path(item)
        if not path.exists():
            yield InputError(f"{path}: no such file or directory", path=path)
        elif path.is_dir():
            found, unreadable = _images_under(path)
            yield from unreadable
            if not found and not any(err.path == path for err in unreadable):
                yield InputError(f"{path}: directory contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})", path=path)
            yield from found
        else:
            yield path


def _images_under(folder: Path) -> tuple[list[Path], list[InputError]]:
    """The image files anywhere under ``folder`` (sorted; symlinked folders are not entered), and
    an error for each folder that could not be read: pathlib's rglob skipped those silently, and
    an unreadable folder was reported as one without images."""
    unreadable: list[InputError] = []

    def on_error(err: OSError) -> None:
        where = Path(err.filename) if err.filename is not None else folder
        unreadable.append(InputError(f"{where}: cannot read folder ({err.strerror or err})", path=where))

    found = [Path(root) / name for root, _, files in os.walk(folder, onerror=on_error)
             for name in files if Path(name).suffix.lower() in IMAGE_SUFFIXES and (Path(root) / name).is_file()]
    return sorted(found), unreadable
