"""Robust image loading: every odd-but-valid image becomes RGB uint8; everything else a one-line error."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from vidfiqa.errors import InputError
from vidfiqa.imageio import iter_image_paths, load_image


def _one_line(err: Exception) -> str:
    text = str(err)
    assert "\n" not in text and text
    return text


def test_rgb_roundtrip(tmp_path, astronaut):
    path = tmp_path / "a.png"
    Image.fromarray(astronaut).save(path)
    img = load_image(path)
    assert img.pixels.dtype == np.uint8 and img.pixels.shape == astronaut.shape
    assert np.array_equal(img.pixels, astronaut) and img.scale == 1.0


def test_grayscale_becomes_rgb(tmp_path, astronaut):
    path = tmp_path / "g.jpg"
    Image.fromarray(astronaut).convert("L").save(path)
    px = load_image(path).pixels
    assert px.shape == astronaut.shape
    assert np.array_equal(px[..., 0], px[..., 1]) and np.array_equal(px[..., 1], px[..., 2])


def test_16bit_png_is_rescaled_not_clipped(tmp_path, astronaut):
    gray16 = (np.asarray(Image.fromarray(astronaut).convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(gray16).save(path)
    assert Image.open(path).mode.startswith("I")
    px = load_image(path).pixels
    expected = np.asarray(Image.fromarray(astronaut).convert("L"))
    assert np.abs(px[..., 0].astype(int) - expected).max() <= 1


def test_cmyk_jpeg(tmp_path, astronaut):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(astronaut).convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    px = load_image(path).pixels
    assert px.shape == astronaut.shape
    # Colours survive the CMYK round trip (an inverted decode would be ~255 off).
    assert np.abs(px.astype(int) - astronaut.astype(int)).mean() < 12


def test_huge_jpeg_is_downscaled(tmp_path, astronaut):
    big = np.asarray(Image.fromarray(astronaut).resize((9000, 9000), Image.Resampling.BILINEAR))
    path = tmp_path / "big.jpg"
    Image.fromarray(big).save(path, quality=80)
    img = load_image(path, max_side=2048)
    assert max(img.pixels.shape[:2]) == 2048
    assert img.original_size == (9000, 9000)
    assert img.scale == pytest.approx(9000 / 2048)


def test_header_claiming_absurd_size_is_refused(tmp_path):
    # A valid PNG header for a 100000 x 100000 image with no real data: must not be decoded.
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")
    path = tmp_path / "bomb.png"
    path.write_bytes(png)
    with pytest.raises(InputError) as err:
        load_image(path)
    assert "bomb.png" in _one_line(err.value)


@pytest.mark.parametrize(
    "name, content, phrase",
    [("zero.jpg", b"", "empty file"), ("text.jpg", b"this is not an image", "not a readable image"), ("trunc.jpg", None, "cannot decode")],
)
def test_bad_files(tmp_path, astronaut, name, content, phrase):
    path = tmp_path / name
    if content is None:  # a real JPEG cut in half
        full = tmp_path / "full.jpg"
        Image.fromarray(astronaut).save(full)
        content = full.read_bytes()[: full.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        load_image(path)
    text = _one_line(err.value)
    assert phrase in text and name in text


def test_missing_path_and_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no images here")
    items = list(iter_image_paths([tmp_path / "nope.jpg", tmp_path / "empty", tmp_path / "notes"]))
    assert all(isinstance(i, InputError) for i in items) and len(items) == 3
    assert "no such file" in str(items[0]) and "no images" in str(items[1]) and "no images" in str(items[2])
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
