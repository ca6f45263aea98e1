"""`vidfiqa run` end to end on real clips: selection avoids degraded segments, two people keep
two track ids, damaged and bad inputs give a valid gallery or a one-line error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import DATA, REPO, need, skip_anywhere, small_disk
from vidfiqa.errors import OutputError
from vidfiqa.pipeline import load_config, make_settings
from vidfiqa.pipeline.run import VideoPipeline

VIDEOS = DATA / "videos"
SAMPLE = REPO / "samples" / "astronaut.mp4"


@pytest.fixture(scope="module")
def pipeline():
    """One pipeline (detector + student loaded once) for the tests that use default settings."""
    return VideoPipeline(make_settings())


def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if limit and len(frames) >= limit:
                break
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "20", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        for image in frames:
            image = np.ascontiguousarray(image[: h - h % 2, : w - w % 2])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def manifest_of(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema"] == "vidfiqa.manifest/2"
    for track in manifest["tracks"]:
        for item in track["selected"]:
            assert (out / item["crop"]).is_file() and (out / item["context"]).is_file()
            crop = cv2.imread(str(out / item["crop"]))
            assert crop.shape == (112, 112, 3)
    return manifest


# ------------------------------------------------------------------------ the bundled sample
def test_sample_clip_selects_sharp_bright_frames(pipeline, tmp_path):
    timeline = json.loads(SAMPLE.with_suffix(".json").read_text())
    manifest = pipeline.run(SAMPLE, tmp_path / "g")
    manifest_of(tmp_path / "g")
    assert manifest["status"] == "complete"
    assert manifest["source"]["frames_decoded"] == timeline["frames"]
    main = max(manifest["tracks"], key=lambda t: t["num_detections"])
    # The default analyses at most 5 frames a second (fps_cap): "every frame" means every analysed one.
    assert manifest["stats"]["frames_processed"] == -(-timeline["frames"] // manifest["stats"]["stride"])
    assert main["num_detections"] >= 0.9 * manifest["stats"]["frames_processed"], "the astronaut is tracked through the whole clip as one person"
    assert len(main["selected"]) == 3
    blur = next(s for s in timeline["timeline"] if s["kind"] == "blur")
    dark = next(s for s in timeline["timeline"] if s["kind"] == "dark")
    for item in main["selected"]:
        t = item["pts"]
        assert not blur["start_s"] <= t < blur["end_s"], f"selected a blurred frame at {t:.2f} s"
        # the first fifth of the dark segment is still bright enough to be a fair pick
        assert not dark["start_s"] + 0.2 * (dark["end_s"] - dark["start_s"]) <= t < dark["end_s"], f"selected a dark frame at {t:.2f} s"
    times = sorted(item["pts"] for item in main["selected"])
    assert min(np.diff(times)) >= manifest["settings"]["min_gap_s"]


# ------------------------------------------------------------------------ shared clips
def test_selected_frames_come_from_clean_segments(pipeline, tmp_path):
    """A clean clip with blurred, darkened and noisy segments injected: selection avoids them."""
    frames = read_frames(need(VIDEOS / "liveportrait_d12.mp4"), limit=150)
    rng = np.random.default_rng(0)
    segments = []  # (start, end, kind)
    ramp = 8  # degradations fade in and out over this many frames, as focus and light change in one shot
    for start in range(0, len(frames), 30):
        kind = ["blur", "clean", "dark", "clean", "noise"][(start // 30) % 5]
        end = min(start + 30, len(frames))
        segments.append((start, end, kind))
        for i in range(start, end):
            w = min(1.0, (i - start + 1) / ramp if start else 1.0,  # the clip opens blurred ...
                    (end - i) / ramp if end < len(frames) else 1.0)  # ... and ends noisy
            image = frames[i].astype(np.float32)
            if kind == "blur":
                image = cv2.GaussianBlur(frames[i], (0, 0), 0.5 + 6.5 * w).astype(np.float32)
            elif kind == "dark":
                image = image * (1 - 0.88 * w) + rng.normal(0, 4 * w, image.shape)
            elif kind == "noise":
                image = image + rng.normal(0, 40 * w, image.shape)
            frames[i] = np.clip(image, 0, 255).astype(np.uint8)
    clip = write_clip(tmp_path / "degraded.mp4", frames)
    manifest = pipeline.run(clip, tmp_path / "g")
    manifest_of(tmp_path / "g")
    assert not any(t["ended"] == "scene_cut" for t in manifest["tracks"]), "gradual degradation is no shot change"
    picks = [item["frame_index"] for track in manifest["tracks"] for item in track["selected"]]
    assert len(picks) >= 3
    # A pick must lie in a clean segment's fully clean part (not where a degradation fades out or in).
    kinds = {i: kind for start, end, kind in segments for i in range(start, end)}
    clean = {i for start, end, kind in segments if kind == "clean" for i in range(start, end)}
    edge = {i for start, end, kind in segments if kind != "clean" for i in range(start - 1, end + 1)}
    assert all(i in clean and i not in edge for i in picks), [(i, kinds.get(i)) for i in picks]


def test_two_people_keep_two_track_ids(pipeline, tmp_path):
    """Two real clips side by side: exactly two tracks, each staying on its own half."""
    left = read_frames(need(VIDEOS / "liveportrait_d12.mp4"), limit=100)
    right = read_frames(need(VIDEOS / "tpsmm_driving.mp4"), limit=100)
    n = min(len(left), len(right))
    frames = [np.hstack([cv2.resize(left[i], (384, 384)), cv2.resize(right[i], (384, 384))]) for i in range(n)]
    clip = write_clip(tmp_path / "two.mp4", frames)
    manifest = pipeline.run(clip, tmp_path / "g")
    manifest_of(tmp_path / "g")
    tracks = manifest["tracks"]
    assert len(tracks) == 2, [(t["track_id"], t["first_frame"], t["last_frame"]) for t in tracks]
    sides = set()
    for track in tracks:
        assert track["num_detections"] >= 0.9 * manifest["stats"]["frames_processed"]
        rows = np.loadtxt(tmp_path / "g" / track["series"], delimiter=",", skiprows=1, usecols=(5, 7))
        centres = rows.mean(axis=1)
        assert (centres < 384).all() or (centres >= 384).all(), "a track jumped between the two people"
        sides.add(bool(centres[0] < 384))
    assert sides == {True, False}


def test_scene_cut_ends_tracks(pipeline, tmp_path):
    """Two shots cut together, each with a face in the middle: the face of the first shot must
    not carry its track id into the second."""
    first = read_frames(need(VIDEOS / "liveportrait_d12.mp4"), limit=50)
    second = [cv2.resize(f, (512, 512)) for f in read_frames(need(VIDEOS / "tpsmm_driving.mp4"), limit=50)]
    clip = write_clip(tmp_path / "cut.mp4", first + second)
    manifest = pipeline.run(clip, tmp_path / "g")
    tracks = sorted(manifest["tracks"], key=lambda t: t["first_frame"])
    assert len(tracks) == 2
    stride = manifest["stats"]["stride"]  # the last analysed frame before the cut, the first after it
    assert tracks[0]["ended"] == "scene_cut" and 50 - stride <= tracks[0]["last_frame"] <= 49
    assert 50 <= tracks[1]["first_frame"] < 50 + stride and tracks[1]["track_id"] != tracks[0]["track_id"]


def test_image_folder_and_decord_agree_with_pyav(pipeline, tmp_path):
    """A YouTube Faces frame folder runs like a video; decord selects what PyAV selects.
    Every frame is analysed (fps_cap 0), so the frame spans are exact."""
    folder = need(DATA / "ytf_subset" / "frame_images_DB" / "Aaron_Guiel" / "5")
    manifest = VideoPipeline(make_settings(fps=24.0, fps_cap=0.0)).run(folder, tmp_path / "ytf")
    assert manifest["source"]["decoder"] == "images"
    assert manifest["source"]["frames_decoded"] == len(list(folder.glob("*.jpg")))
    # This folder skips 36 frames of the original video after its 79th image (5.1919 -> 5.1955)
    # and the face jumps there, so Aaron Guiel is two tracks: one per continuous stretch.
    faces = [t for t in manifest["tracks"] if t["num_detections"] > 40]
    assert [(t["first_frame"], t["last_frame"]) for t in faces] == [(0, 78), (79, 131)]
    assert all(len(t["selected"]) == 3 for t in faces)
    assert abs(faces[0]["selected"][1]["pts"] - faces[0]["selected"][1]["frame_index"] / 24.0) < 1e-6
    # Timestamps come from the frame numbers in the names (5.1841.jpg ...), so they keep the gap.
    assert faces[1]["first_pts"] == pytest.approx((1955 - 1841) / 24.0)

    clip = need(VIDEOS / "ytf_Aaron_Guiel_5.avi")
    by_pyav = VideoPipeline(make_settings(fps_cap=0.0)).run(clip, tmp_path / "pyav")
    by_decord = VideoPipeline(make_settings(decoder="decord", fps_cap=0.0)).run(clip, tmp_path / "decord")
    assert by_decord["source"]["decoder"] == "decord"
    spans = [[(t["first_frame"], t["last_frame"]) for t in m["tracks"]] for m in (by_pyav, by_decord)]
    assert spans[0] == spans[1]
    # The two decoders' pixels differ slightly (their colour conversions), which can swap two
    # near-equal frames; the picks must still be mostly the same and as good.
    # (Their ranks may swap too: compare the sets of picked frames.)
    picks = [[s["frame_index"] for t in m["tracks"] for s in t["selected"]] for m in (by_pyav, by_decord)]
    assert len(set(picks[0]) & set(picks[1])) >= 0.6 * len(picks[0]), picks
    best = [[t["selected"][0]["frame_index"] for t in m["tracks"] if t["selected"]] for m in (by_pyav, by_decord)]
    assert best[0] == best[1], best  # each track's best frame is the same
    # One swapped diverse pick (measured: frame 37 at 0.34 against frame 72 at 0.49) moves the
    # mean of 6 picks by 0.025: a difference of one pick is allowed, not more.
    quality = [np.mean([s["quality"] for t in m["tracks"] for s in t["selected"]]) for m in (by_pyav, by_decord)]
    assert abs(quality[0] - quality[1]) < 0.03


def test_truncated_clip_still_gives_a_valid_gallery(pipeline, tmp_path):
    source = need(VIDEOS / "ytf_Agbani_Darego_0.avi")
    data = source.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    manifest = pipeline.run(cut, tmp_path / "g")
    manifest_of(tmp_path / "g")
    assert manifest["status"] in ("complete", "stopped_early")
    assert 0 < manifest["stats"]["frames_processed"] < 184
    assert manifest["tracks"] and all(t["selected"] for t in manifest["tracks"])


def test_http_stream_that_dies_midway(pipeline, tmp_path):
    """An MPEG-TS stream over HTTP whose server hangs up halfway: the frames that arrived are
    processed and the gallery says the input stopped early."""
    import http.server
    import threading

    ts = tmp_path / "live.ts"
    with av.open(str(SAMPLE)) as src, av.open(str(ts), "w", format="mpegts") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    payload = ts.read_bytes()

    class HangUp(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.send_header("Content-Length", str(len(payload)))  # promises all, sends half
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HangUp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        manifest = pipeline.run(f"http://cam:s3cret@127.0.0.1:{server.server_address[1]}/live.ts", tmp_path / "g")
    finally:
        server.shutdown()
    manifest_of(tmp_path / "g")
    assert 20 < manifest["stats"]["frames_decoded"] < 120 and manifest["stats"]["frames_processed"] > 0
    assert manifest["status"] == "stopped_early" and manifest["message"]
    assert manifest["tracks"] and manifest["tracks"][0]["selected"]
    assert "s3cret" not in (tmp_path / "g" / "manifest.json").read_text() + (tmp_path / "g" / "index.html").read_text()


def test_interrupted_run_leaves_a_valid_manifest(pipeline, tmp_path):
    def stop_at_20(done, expected):
        if done == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pipeline.run(SAMPLE, tmp_path / "g", progress=stop_at_20)
    manifest = manifest_of(tmp_path / "g")
    assert manifest["status"] == "interrupted"
    assert manifest["stats"]["frames_processed"] == 20
    assert manifest["tracks"] and manifest["tracks"][0]["last_frame"] <= 19 * manifest["stats"]["stride"]


def test_detect_every_keeps_the_selection(tmp_path):
    """Full-frame detection every 3rd frame with re-detection in between: the same person, as
    many detections, and picks as good as with detection on every frame."""
    every = VideoPipeline(make_settings(detect_every=3)).run(SAMPLE, tmp_path / "g3")
    processed = every["stats"]["frames_processed"]
    main = max(every["tracks"], key=lambda t: t["num_detections"])
    assert main["num_detections"] >= 0.9 * processed
    assert every["stats"]["full_detections"] <= processed / 3 + 2
    assert np.mean([s["quality_smoothed"] for s in main["selected"]]) > 0.45


def test_another_quality_method_ranks_while_the_floors_stay_on_the_students_scale(tmp_path):
    """`--quality-method sharpness` ranks the frames by Laplacian variance (hundreds, not 0-1),
    but min_quality, the face gate and identity votes stay on the student's scale, which they
    were calibrated on.  The student still runs for the embeddings; its quality is kept as
    ``face_quality``.  On the sample, the astronaut stays one track through the dark segment
    (with sharpness as the floor scale, every dark face voted and split the track there)."""
    manifest = VideoPipeline(make_settings(quality_method="sharpness")).run(SAMPLE, tmp_path / "g")
    assert manifest["settings"]["quality_method"] == "sharpness"
    assert not manifest["rejected"], manifest["rejected"]
    main = max(manifest["tracks"], key=lambda t: t["num_detections"])
    assert all(t["ended"] != "identity_change" for t in manifest["tracks"])
    full = json.loads((REPO / "samples" / "astronaut.json").read_text())
    assert main["num_detections"] >= 0.9 * manifest["stats"]["frames_processed"]
    series = np.genfromtxt(tmp_path / "g" / main["series"], delimiter=",", names=True)
    assert "face_quality" in series.dtype.names
    scored = np.isfinite(series["quality"])
    assert np.nanmax(series["quality"]) > 10 and np.nanmax(series["face_quality"]) < 1.5  # two scales
    assert scored.sum() >= 0.9 * len(series)
    # No pick from the dark segment (15 % brightness with sensor noise).
    dark = next(seg for seg in full["timeline"] if seg["kind"] == "dark")
    for item in main["selected"]:
        assert item["quality"] > 10
        assert not dark["start_s"] <= item["pts"] < dark["end_s"], item


# ------------------------------------------------------------------------ command line
def vidfiqa(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidfiqa.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def vidfiqa_each(*commands: tuple) -> list[subprocess.CompletedProcess]:
    """Several independent `vidfiqa` commands at once (each its own process, as a user runs
    it); the results in the order given.  Most of each run is the interpreter starting."""
    running = [subprocess.Popen([sys.executable, "-m", "vidfiqa.cli", *map(str, c)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for c in commands]
    done = []
    for process in running:
        out, err = process.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_cli_run_stopped_by_sigterm_keeps_its_tracks(tmp_path):
    """SIGTERM (what timeout, docker and systemd send) ends `vidfiqa run` as Ctrl-C does: the open
    tracks are scored and written and the manifest says interrupted (it used to die at once and
    leave "running" with no tracks).  Exit status 143 = 128 + SIGTERM."""
    import signal
    import time

    out = tmp_path / "g"
    process = subprocess.Popen([sys.executable, "-m", "vidfiqa.cli", "run", str(need(VIDEOS / "facenetpytorch_street_crowd.mp4")),
                                "-o", str(out), "-q", "--fps-cap", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "manifest.json").is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(4)  # well into the 105 frames, every one analysed
    assert process.poll() is None, "the run ended before it could be stopped"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "interrupted" in err and "Traceback" not in err
    manifest = manifest_of(out)
    assert manifest["status"] == "interrupted"
    assert 0 < manifest["stats"]["frames_processed"] < 105
    assert manifest["tracks"], "the tracks open at the signal are written"


def test_cli_run_stopped_twice_still_writes_every_finished_track(tmp_path):
    """A second stop signal 20 ms after the first (two Ctrl-C's, a supervisor repeating SIGTERM)
    landed inside the flush of the open tracks: the manifest said "complete" (or "running") and
    listed fewer tracks than tracks/ held.  Now the second one waits for the flush: the status
    says interrupted, the exit is 128 + the first signal, and manifest and folder agree."""
    import signal
    import time

    out = tmp_path / "g"
    clip = need(DATA / "edited_videos" / "azurevi_friends_cuts.mp4")  # several people, 448 frames
    process = subprocess.Popen([sys.executable, "-m", "vidfiqa.cli", "run", str(clip), "-o", str(out), "-q", "--fps-cap", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "manifest.json").is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(6)  # a few shots in: some tracks written, several open
    assert process.poll() is None, "the run ended before it could be stopped"
    process.send_signal(signal.SIGINT)
    time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "already stopping" in err, err
    manifest = manifest_of(out)
    assert manifest["status"] == "interrupted", manifest["status"]
    listed = {f"{t['track_id']:04d}" for t in manifest["tracks"]}
    on_disk = {d.name for d in (out / "tracks").iterdir()}
    assert listed and listed == on_disk, (listed, on_disk)
    assert len(manifest["tracks"]) >= 3


def test_a_second_run_into_a_busy_folder_is_refused_and_a_killed_run_does_not_block(tmp_path):
    """Two runs into one folder both exited 0: the second replaced the first's gallery while the
    first went on writing, and the manifest described one input while tracks/ held the other's
    images.  Now the second is refused in one line (exit 2) and the first's gallery is whole; a
    run killed with SIGKILL leaves no lock behind (the kernel drops its flock)."""
    import signal
    import time

    out = tmp_path / "c"
    clip = need(DATA / "edited_videos" / "azurevi_friends_cuts.mp4")
    first = subprocess.Popen([sys.executable, "-m", "vidfiqa.cli", "run", str(clip), "-o", str(out), "-q", "--fps-cap", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "manifest.json").is_file() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.2)
        second = vidfiqa("run", SAMPLE, "-o", out, "-q")
        assert first.poll() is None, "the first run ended before the second one tried"
        line = one_line_error(second)
        assert second.returncode == 2 and f"{out} is in use by another vidfiqa run (pid {first.pid})" in line, line
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    assert manifest_of(out)["source"]["path"] == str(clip), "the refused run touched the folder"
    third = vidfiqa("run", SAMPLE, "-o", out, "-q")
    assert third.returncode == 0, third.stderr
    manifest = manifest_of(out)
    assert manifest["source"]["path"] == str(SAMPLE) and manifest["status"] == "complete"
    assert {d.name for d in (out / "tracks").iterdir()} == {f"{t['track_id']:04d}" for t in manifest["tracks"]}


def reencoded(path: Path, container: str, frames: int | None = None) -> Path:
    """The bundled sample's first ``frames`` frames (all: None) in another container, H.264."""
    with av.open(str(SAMPLE)) as src, av.open(str(path), "w", format=container) as dst:
        stream = dst.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
        for k, frame in enumerate(src.decode(video=0)):
            if frames is not None and k >= frames:
                break
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return path


def test_a_one_frame_video_says_its_face_was_too_short_a_track(tmp_path):
    """A one-frame video said "no faces found" though a face was found: its one-detection track
    was dropped by min_track_detections.  Now it says so."""
    clip = reencoded(tmp_path / "one.mp4", "mp4", frames=1)
    result = vidfiqa("run", clip, "-o", tmp_path / "g", "-q")
    assert result.returncode == 0, result.stderr
    assert "no faces found" not in result.stderr
    assert "no track kept: 1 face detection in 1 track shorter than min_track_detections (3)" in " ".join(result.stderr.split()), result.stderr
    assert vidfiqa("run", clip, "-o", tmp_path / "g1", "-q", "--min-track-detections", "1").returncode == 0
    assert len(manifest_of(tmp_path / "g1")["tracks"]) == 1


def test_a_named_pipe_is_read_as_a_stream(tmp_path):
    """A FIFO given as input was refused as "empty file" (its size is 0).  Now it is read as a
    stream: MPEG-TS through it gives the gallery; MP4, which FFmpeg must seek in, is one line
    that says what to send instead."""
    import os
    import threading

    def feed(source: Path, pipe: Path) -> None:
        try:
            pipe.write_bytes(source.read_bytes())  # blocks until the run opens the pipe
        except BrokenPipeError:
            pass  # the reader gave up (the MP4 case)

    ts = reencoded(tmp_path / "astronaut.ts", "mpegts")
    for source, expected in ((ts, 0), (SAMPLE, 2)):
        pipe = tmp_path / f"pipe{expected}"
        os.mkfifo(pipe)
        threading.Thread(target=feed, args=(source, pipe), daemon=True).start()
        result = vidfiqa("run", pipe, "-o", tmp_path / f"g{expected}", "-q")
        assert result.returncode == expected, result.stderr
        if expected == 0:
            manifest = manifest_of(tmp_path / "g0")
            assert manifest["status"] == "complete" and len(manifest["tracks"]) == 1, manifest["status"]
        else:
            line = one_line_error(result)
            assert "empty file" not in line and "through a pipe, send a stream format such as MPEG-TS" in line, line


def test_cli_run_on_a_full_disk_fails_in_one_line_and_the_manifest_says_failed(tmp_path, monkeypatch):
    """A disk that fills up mid-run was "internal error", exit 3, with no path, and the manifest
    often stayed "running".  Now: one line naming the file, exit 4, and a manifest that says
    failed with the reason (rewritten in place when an atomic copy no longer fits).  On a real
    64 KiB tmpfs where the machine allows mounting one, else with ENOSPC injected at the sink."""
    import errno

    disk = tmp_path / "disk"
    with small_disk(disk, 64) as mounted:
        out = disk / "g"
        if mounted:
            result = vidfiqa("run", SAMPLE, "-o", out, "-q")
            assert result.returncode == 4, result.stderr
            last = result.stderr.strip().splitlines()[-1]
            assert last.startswith(f"vidfiqa: error: cannot write {out}/") and last.endswith("No space left on device"), result.stderr
            assert "internal error" not in result.stderr and "Traceback" not in result.stderr
        else:
            from vidfiqa import atomic

            made = []

            def fills_up(fd):
                made.append(fd)
                if len(made) > 4:  # the first manifest and page, then the first track's images
                    raise OSError(errno.ENOSPC, "No space left on device")
            monkeypatch.setattr(atomic, "plain_mode", fills_up)
            with pytest.raises(OutputError, match="No space left on device"):
                VideoPipeline(make_settings()).run(SAMPLE, out)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "failed" and "No space left on device" in manifest["message"], manifest["message"]


def test_cli_run_into_a_read_only_folder_names_it(tmp_path):
    with small_disk(tmp_path / "ro", 64, read_only=True) as mounted:
        if not mounted:  # not a gap in the set-up: an unprivileged machine cannot mount one
            skip_anywhere("this machine does not let the tests mount a read-only tmpfs (needs root)")
        result = vidfiqa("run", SAMPLE, "-o", tmp_path / "ro" / "g", "-q")
    assert result.returncode == 4, result.stderr
    assert result.stderr.strip() == f"vidfiqa: error: cannot write {tmp_path / 'ro' / 'g'}: Read-only file system", result.stderr


def test_cli_run_names_each_unreadable_frame_of_a_folder(tmp_path):
    """A folder of frames with corrupt images used to say only "31 frames (28 analysed)": each
    skipped file is named on stderr (as `vidfiqa faces` does) and counted in the manifest."""
    source = need(DATA / "ytf_subset" / "frame_images_DB" / "Aaron_Guiel" / "5")
    folder = tmp_path / "frames"
    folder.mkdir()
    images = sorted(source.glob("*.jpg"), key=lambda p: [int(part) for part in p.stem.split(".")])[:30]
    broken = {images[k].name for k in (4, 11, 20)}
    for path in images:
        (folder / path.name).write_bytes(b"\xff\xd8 not a jpeg" if path.name in broken else path.read_bytes())
    result = vidfiqa("run", folder, "--fps", "24", "--fps-cap", "0", "-o", tmp_path / "g", "-q")
    assert result.returncode == 0, result.stderr
    for name in broken:
        assert any(line.startswith("skipped ") and name in line for line in (result.stdout + result.stderr).splitlines()), (name, result.stderr)
    stats = manifest_of(tmp_path / "g")["stats"]
    assert stats["frames_skipped"] == 3 and stats["frames_processed"] == 27
    assert sorted(Path(line.split(":")[0]).name for line in stats["skipped_files"]) == sorted(broken)


def test_a_file_with_a_small_first_video_stream_is_read_for_its_largest(tmp_path):
    """Stream 0 a 160x120 placeholder, stream 1 the real picture: vidfiqa used to read stream 0
    and find no face, silently.  It reads the largest, the manifest says which, and
    `--video-stream` chooses another; a stream that is not there is a one-line error."""
    frames = read_frames(SAMPLE)
    clip = tmp_path / "two_streams.mp4"
    with av.open(str(clip), "w") as container:
        small = container.add_stream("libx264", rate=15, options={"preset": "ultrafast"})
        small.width, small.height, small.pix_fmt = 160, 120, "yuv420p"
        big = container.add_stream("libx264", rate=15, options={"preset": "ultrafast"})
        h, w = frames[0].shape[:2]
        big.width, big.height, big.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        for image in frames:
            for stream, picture in ((small, np.full((120, 160, 3), 128, np.uint8)), (big, np.ascontiguousarray(image[: h - h % 2, : w - w % 2]))):
                for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                    container.mux(packet)
        for stream in (small, big):
            for packet in stream.encode():
                container.mux(packet)
    default, first, missing = vidfiqa_each(("run", clip, "-o", tmp_path / "g", "-q"), ("run", clip, "-o", tmp_path / "g0", "-q", "--video-stream", "0"),
                                           ("run", clip, "-o", tmp_path / "g5", "-q", "--video-stream", "5"))
    assert default.returncode == 0, default.stderr
    manifest = manifest_of(tmp_path / "g")
    assert manifest["source"]["stream_index"] == 1 and manifest["source"]["video_streams"] == 2
    assert (manifest["source"]["width"], manifest["source"]["height"]) == (w - w % 2, h - h % 2) and manifest["tracks"]
    assert first.returncode == 0, first.stderr
    placeholder = manifest_of(tmp_path / "g0")
    assert placeholder["source"]["stream_index"] == 0 and placeholder["source"]["width"] == 160 and not placeholder["tracks"]
    assert missing.returncode == 2 and "has no video stream 5; its video streams are 0 (160x120), 1 (" in missing.stderr.strip().splitlines()[-1], missing.stderr


def test_cli_bad_inputs(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    audio = tmp_path / "audio.m4a"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (np.sin(np.arange(16000) / 10.0) * 0.2).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.txt").write_text("precious")
    try:
        import torch

        gpu = torch.cuda.is_available()
    except ImportError:
        gpu = False
    missing, not_video, audio_only, top_k, refused, preset, busy, *decoder = vidfiqa_each(
        ("run", tmp_path / "nope.mp4", "-o", tmp_path / "a"),
        ("run", text, "-o", tmp_path / "b"),
        ("run", audio, "-o", tmp_path / "c"),
        ("run", SAMPLE, "-o", tmp_path / "d", "--top-k", "0"),
        ("run", "rtsp://admin:s3cret@127.0.0.1:1/stream", "-o", tmp_path / "r"),
        ("run", SAMPLE, "-o", tmp_path / "e", "--config", "nosuch"),
        ("run", SAMPLE, "-o", tmp_path / "busy"),
        *([] if gpu else [("run", SAMPLE, "-o", tmp_path / "f", "--decoder", "gpu")]),
    )
    assert "no such file" in one_line_error(missing).lower()
    assert not (tmp_path / "a").exists(), "nothing is written for an input that cannot be opened"
    one_line_error(not_video)
    assert "video" in one_line_error(audio_only).lower()
    assert "top_k" in one_line_error(top_k)
    line = one_line_error(refused)
    assert "cannot open" in line and "s3cret" not in line
    if decoder:
        assert "gpu" in one_line_error(decoder[0]).lower()
    assert "preset" in one_line_error(preset)
    assert "not empty" in one_line_error(busy)
    assert (tmp_path / "busy" / "thesis.txt").read_text() == "precious"


def test_cli_no_faces_gives_an_empty_gallery(tmp_path):
    rng = np.random.default_rng(1)
    frames = [cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 3) for _ in range(20)]
    clip = write_clip(tmp_path / "empty.mp4", frames)
    result = vidfiqa("run", clip, "-o", tmp_path / "g", "-q")
    assert result.returncode == 0, result.stderr
    assert "no faces found" in result.stderr
    manifest = manifest_of(tmp_path / "g")
    assert manifest["tracks"] == [] and manifest["status"] == "complete"


def test_cli_preset_with_override(tmp_path):
    result = vidfiqa("run", SAMPLE, "-o", tmp_path / "g", "-q", "--config", "fast", "--top-k", "2", "--no-write-series")
    assert result.returncode == 0, result.stderr
    manifest = manifest_of(tmp_path / "g")
    settings = manifest["settings"]
    fast = load_config("fast")
    assert settings["score_every"] == fast["score_every"] > 2 and settings["input_size"] == fast["input_size"]  # from the preset
    assert settings["top_k"] == 2 and settings["write_series"] is False  # from the command line
    assert all(len(t["selected"]) <= 2 and "series" not in t for t in manifest["tracks"])


# ------------------------------------------------------------------------ the page
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium package (installed by .ci/run)")
def test_index_html_renders_every_track_without_broken_images(pipeline, tmp_path):
    out = tmp_path / "g"
    pipeline.run(SAMPLE, out)
    manifest = manifest_of(out)
    # One missing image must be caught by the same check, or the check proves nothing.
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / manifest["tracks"][0]["selected"][0]["context"]).unlink()  # shown once (as an image) on the page
    for folder, expect_broken in ((out, 0), (broken, 1)):
        dom = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
             "--virtual-time-budget=5000", "--dump-dom", (folder / "index.html").as_uri()],
            capture_output=True, text=True, timeout=120,
        ).stdout
        assert 'data-images-broken="%d"' % expect_broken in dom, dom[:500]
        # Every track shows its picks' crops and context views; every person its picks' crops.
        images = sum(2 * len(t["selected"]) for t in manifest["tracks"] + manifest["rejected"])
        images += sum(len(p["selected"]) for p in manifest["persons"])
        assert f'data-images="{images}"' in dom
        for track in manifest["tracks"]:
            assert f'data-track-id="{track["track_id"]}"' in dom
        for person in manifest["persons"]:
            assert f'data-person-id="{person["person_id"]}"' in dom
