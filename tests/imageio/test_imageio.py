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


def _png_of_zeros(path, width, height):
    """A valid 8-bit grayscale PNG of zeros, compressed as it is written (never held in memory)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor, rows = zlib.compressobj(1), b"\0" * ((width + 1) * 1000)
    parts = [compressor.compress(rows) for _ in range(height // 1000)] + [compressor.compress(b"\0" * ((width + 1) * (height % 1000))), compressor.flush()]
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_is_refused_without_decoding_it(tmp_path):
    """A real 30000x30000 PNG (a few MB on disk, 2.7 GB as RGB) took 8 GB to `vidfiqa score`.
    PNG cannot be decoded at a reduced size, so it is over the pixel budget and refused in one
    line; a fresh process that tries stays small."""
    import subprocess
    import sys

    bomb = _png_of_zeros(tmp_path / "bomb.png", 30000, 30000)
    assert bomb.stat().st_size < 8_000_000
    # The child's peak memory is VmHWM (getrusage's maxrss would include this process's, which
    # the child inherits across fork on Linux).
    code = ("from vidfiqa.imageio import load_image\nfrom vidfiqa.errors import InputError\n"
            f"try:\n    load_image({str(bomb)!r})\nexcept InputError as err:\n    print(err)\n"
            "print(next(int(line.split()[1]) // 1024 for line in open('/proc/self/status') if line.startswith('VmHWM')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    assert len(out) == 2 and "bomb.png: 30000x30000 is 900 megapixels, over the 100 megapixel budget" in out[0], out
    assert int(out[1]) < 400, f"max RSS {out[1]} MiB"


def test_the_pixel_budget_decodes_jpeg_at_a_reduced_size_and_refuses_png(tmp_path, astronaut, monkeypatch):
    """With a budget of 1 megapixel, a 2000x2000 JPEG is decoded at 1/2 (1000x1000, within the
    budget) and comes back at full size; the same picture as PNG is refused, naming the file."""
    monkeypatch.setenv("VIDFIQA_MAX_PIXELS", "1000000")
    picture = Image.fromarray(astronaut).resize((2000, 2000), Image.Resampling.BILINEAR)
    picture.save(tmp_path / "big.jpg", quality=90)
    picture.save(tmp_path / "big.png")
    img = load_image(tmp_path / "big.jpg")
    assert img.original_size == (2000, 2000) and img.pixels.shape == (1000, 1000, 3) and img.scale == pytest.approx(2.0)
    with pytest.raises(InputError, match="big.png: 2000x2000 is 4 megapixels, over the 1 megapixel budget"):
        load_image(tmp_path / "big.png")
