"""vidfiqa.video: the frame sources agree with each other and survive bad input."""

from __future__ import annotations

import json
import math
import shutil
import struct
from fractions import Fraction

import av
import numpy as np
import pytest

from conftest import DATA, missing, need, skip_anywhere
from vidfiqa.errors import ConfigError, InputError
from vidfiqa.video import gpu_available, open_source
from vidfiqa.video.imageseq_source import natural_key

VIDEOS = DATA / "videos"
SMALL_MP4 = VIDEOS / "tpsmm_driving.mp4"  # 410x412, 169 frames, with an audio stream
MOOV_FIRST_MP4 = VIDEOS / "liveportrait_s18.mp4"  # index (moov) before the media data
AVI = VIDEOS / "ytf_Aaron_Guiel_5.avi"  # mjpeg, 132 frames
YTF_FOLDER = DATA / "ytf_subset" / "frame_images_DB" / "Aaron_Guiel" / "5"
FILE_DECODERS = ["pyav", "decord"]
CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_clip(path, images, pts_ms=None, rotation_ccw=None, pix_fmt="yuv420p"):
    """Encode RGB ``images`` to ``path``; ``pts_ms`` gives each frame's time in milliseconds."""
    height, width = images[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(CODEC, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if pts_ms is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        if rotation_ccw is not None:
            stream.set_display_rotation(rotation_ccw)
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def read_all(path, **kwargs):
    with open_source(path, **kwargs) as source:
        frames = list(source)
    return source, frames


def top_level_atoms(data: bytes) -> list[str]:
    """Names of an MP4's top-level boxes, in file order."""
    names, offset = [], 0
    while offset + 8 <= len(data):
        size, name = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        names.append(name.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return names


def truncated_copy(src, tmp_path, fraction=0.6):
    data = src.read_bytes()
    out = tmp_path / f"cut_{src.name}"
    out.write_bytes(data[:int(len(data) * fraction)])
    return out


# --- real clips --------------------------------------------------------------------------------


def test_pyav_and_decord_agree_on_mp4():
    path = need(SMALL_MP4)
    pyav, pyav_frames = read_all(path, decoder="pyav")
    decord, decord_frames = read_all(path, decoder="decord")
    assert pyav.info.decoder == "pyav" and decord.info.decoder == "decord"
    assert (pyav.info.width, pyav.info.height, pyav.info.fps) == (410, 412, 25.0)
    assert pyav.info.frame_count == decord.info.frame_count == len(pyav_frames) == len(decord_frames) == 169
    assert pyav.stopped_early is None and decord.stopped_early is None
    assert [f.index for f in pyav_frames] == list(range(169))
    np.testing.assert_allclose([f.pts for f in pyav_frames], [f.pts for f in decord_frames], atol=1e-3)
    for a, b in zip(pyav_frames[::20], decord_frames[::20]):
        assert a.image.shape == (412, 410, 3) and a.image.dtype == np.uint8 and a.image.flags.c_contiguous
        assert np.abs(a.image.astype(np.int16) - b.image).mean() < 1.0
    json.dumps(pyav.info.to_dict())


@pytest.mark.parametrize("decoder", FILE_DECODERS)
def test_stride_keeps_every_third_frame(decoder):
    source, frames = read_all(need(SMALL_MP4), decoder=decoder, stride=3)
    assert [f.index for f in frames] == list(range(0, 169, 3))
    np.testing.assert_allclose([f.pts for f in frames], [i / 25 for i in range(0, 169, 3)], atol=1e-3)
    assert source.stopped_early is None


def test_source_is_iterated_once():
    with open_source(need(AVI)) as source:
        assert sum(1 for _ in source) == 132
        with pytest.raises(RuntimeError):
            iter(source)


# --- clips written here ------------------------------------------------------------------------


@pytest.mark.parametrize("decoder", FILE_DECODERS)
def test_variable_frame_rate_timestamps_are_exact(tmp_path, decoder):
    pts_ms = [0, 33, 100, 110, 300, 500, 503, 700, 1234]
    images = [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(len(pts_ms))]
    path = write_clip(tmp_path / "vfr.mp4", images, pts_ms=pts_ms)
    source, frames = read_all(path, decoder=decoder)
    got = [f.pts for f in frames]
    if decoder == "pyav":
        assert got == [t / 1000 for t in pts_ms]
    else:  # decord reports float32 seconds
        np.testing.assert_allclose(got, [t / 1000 for t in pts_ms], atol=1e-6)


@pytest.mark.parametrize("decoder", FILE_DECODERS)
def test_rotation_metadata_is_applied(tmp_path, decoder):
    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        missing("this PyAV cannot write a display matrix (no VideoStream.set_display_rotation)")
    image = np.zeros((240, 320, 3), np.uint8)
    image[:60, :100] = 255  # marker in the top-left corner of the stored pixels
    # What phones write for portrait video: display = stored pixels turned 90 degrees clockwise.
    path = write_clip(tmp_path / "portrait.mp4", [image] * 3, rotation_ccw=-90)
    source, frames = read_all(path, decoder=decoder)
    assert source.info.rotation == 90
    assert (source.info.width, source.info.height) == (240, 320)
    upright = frames[0].image
    assert upright.shape == (320, 240, 3) and upright.flags.c_contiguous
    assert upright[:100, 180:].mean() > 200  # the marker went to the top-right corner
    assert upright[:100, :60].mean() < 50


@pytest.mark.parametrize("decoder", FILE_DECODERS)
def test_odd_frame_size_round_trips(tmp_path, decoder):
    image = np.zeros((413, 411, 3), np.uint8)
    image[..., 0] = np.arange(411)[None, :] * 255 // 411
    image[..., 1] = np.arange(413)[:, None] * 255 // 413
    path = write_clip(tmp_path / "odd.mp4", [image] * 4, pix_fmt="yuv444p")  # 4:2:0 needs even sizes
    source, frames = read_all(path, decoder=decoder)
    assert (source.info.width, source.info.height) == (411, 413) and len(frames) == 4
    assert frames[0].image.shape == (413, 411, 3)
    assert np.abs(frames[0].image.astype(np.int16) - image).mean() < 3.0


# --- image folders -----------------------------------------------------------------------------


def test_ytf_frame_folder_in_natural_order():
    folder = need(YTF_FOLDER)
    names = sorted((p.name for p in folder.glob("*.jpg")), key=lambda n: int(n.split(".")[1]))
    source, frames = read_all(folder, decoder="pyav", fps=25.0, stride=2)  # a folder is always images
    assert source.info.decoder == "images" and source.info.frame_count == len(names)
    assert [p.name for p in source.paths] == names
    assert (source.info.width, source.info.height) == (320, 240)
    assert [f.index for f in frames] == list(range(0, len(names), 2))
    assert frames[1].pts == pytest.approx(2 / 25)
    assert source.skipped == 0 and source.stopped_early is None


def test_image_folder_skips_unreadable_and_resizes(tmp_path):
    jpgs = sorted(need(YTF_FOLDER).glob("*.jpg"))[:3]
    for name, src in zip(["1.9.jpg", "1.10.jpg", "1.2.jpg"], jpgs):
        shutil.copy(src, tmp_path / name)
    (tmp_path / "1.5.jpg").write_bytes(b"not a jpeg")
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 10, 10)).save(tmp_path / "1.20.png")
    source, frames = read_all(tmp_path)
    assert [p.name for p in source.paths] == ["1.2.jpg", "1.5.jpg", "1.9.jpg", "1.10.jpg", "1.20.png"]
    assert [f.index for f in frames] == [0, 2, 3, 4] and source.skipped == 1
    assert all(f.image.shape == (240, 320, 3) for f in frames)
    assert math.isnan(frames[0].pts) and source.info.fps is None
    assert natural_key("a2.jpg") < natural_key("a10.jpg") < natural_key("b1.jpg")


def test_folder_of_folders_is_explained(tmp_path):
    folder = need(YTF_FOLDER).parent
    with pytest.raises(InputError, match="subfolder"):
        open_source(folder)
    with pytest.raises(InputError, match="no images"):
        open_source(tmp_path)


# --- damaged and wrong input -------------------------------------------------------------------


@pytest.mark.parametrize("decoder", FILE_DECODERS)
def test_truncated_avi_ends_cleanly(tmp_path, decoder):
    path = truncated_copy(need(AVI), tmp_path)
    source, frames = read_all(path, decoder=decoder)
    assert 0 < len(frames) < 132
    assert [f.index for f in frames] == list(range(len(frames)))
    assert "truncated" in source.stopped_early


def test_truncated_mp4_with_index_first_yields_what_is_there(tmp_path):
    original = need(MOOV_FIRST_MP4)
    assert top_level_atoms(original.read_bytes()[:4096])[:2] == ["ftyp", "moov"]
    source, frames = read_all(truncated_copy(original, tmp_path), decoder="pyav", stride=10)
    assert 0 < len(frames) and frames[-1].index < 282
    assert "truncated" in source.stopped_early


@pytest.mark.parametrize("decoder", FILE_DECODERS)
def test_truncated_mp4_with_index_last_is_refused(tmp_path, decoder):
    moov_last = [p for p in sorted(need(VIDEOS).glob("*.mp4")) if top_level_atoms(p.read_bytes())[-1] == "moov"]
    if not moov_last:
        missing("no shared .mp4 has its moov atom at the end")
    path = truncated_copy(moov_last[0], tmp_path)
    with pytest.raises(InputError, match="index"):
        open_source(path, decoder=decoder)


@pytest.mark.parametrize("decoder", FILE_DECODERS)
def test_damage_in_the_middle_does_not_raise(tmp_path, decoder):
    data = bytearray(need(SMALL_MP4).read_bytes())
    middle = len(data) // 2
    data[middle:middle + 20000] = np.random.default_rng(0).integers(0, 256, 20000, np.uint8).tobytes()
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    source, frames = read_all(path, decoder=decoder)
    assert len(frames) > 20
    if decoder == "pyav":  # skips the bad packets and goes on to the end
        assert source.skipped > 0 and frames[-1].pts > 6.0
    else:  # decord decodes nothing after the damage
        assert source.stopped_early.startswith("decode error at frame")


def test_unreachable_stream_raises_input_error():
    with pytest.raises(InputError, match="cannot open"):
        open_source("rtsp://127.0.0.1:9/nothing-listens-here")
    with pytest.raises(ConfigError, match="local files only"):
        open_source("rtsp://127.0.0.1:9/x", decoder="decord")


def write_audio_only(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100, layout="mono")
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize("decoder", FILE_DECODERS)
@pytest.mark.parametrize("kind, message", [
    ("missing", "no such file"),
    ("empty", "empty file"),
    ("text", "not a video"),
    ("audio", "no video stream"),
    ("photo", "still image"),
])
def test_bad_input_raises_input_error(tmp_path, decoder, kind, message):
    if kind == "missing":
        path = tmp_path / "missing.mp4"
    elif kind == "empty":
        path = tmp_path / "empty.mp4"
        path.write_bytes(b"")
    elif kind == "text":
        path = tmp_path / "notes.mp4"
        path.write_text("this is not a video\n" * 50)
    elif kind == "audio":
        path = write_audio_only(tmp_path / "voice.m4a")
    else:
        path = tmp_path / "face.jpg"
        shutil.copy(next(need(YTF_FOLDER).glob("*.jpg")), path)
    with pytest.raises(InputError, match=message) as err:
        open_source(path, decoder=decoder)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs", [{"decoder": "ffmpeg"}, {"stride": 0}, {"threads": -1}, {"fps": 0}])
def test_bad_arguments_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        open_source(need(AVI), **kwargs)


def test_gpu_decoder_without_gpu_is_a_config_error():
    if gpu_available():
        skip_anywhere("a GPU decoder is usable here")
    with pytest.raises(ConfigError, match="GPU decoding is not available"):
        open_source(need(AVI), decoder="gpu")
