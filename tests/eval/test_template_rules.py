"""Template rules (select/template_rules.py) on real YouTube Faces crops, the eval's rules against
the pipeline's own selection, and the template `vidfiqa run` writes into its manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import DATA, REPO, need
from vidfiqa.eval import setverify as sv
from vidfiqa.select.template_rules import TemplateBuilder, merged, selected_frames, softmax_weights, weighted_template

FRAMES = 16


class Recording:
    """A scorer that keeps what the pipeline hands it and what it answers."""

    def __init__(self, scorer):
        self._scorer = scorer
        self.inputs: list = []
        self.outputs: list = []

    def __call__(self, faces, frames=None):
        self.inputs.append(faces.replace(crops=faces.crops.copy()))
        out = self._scorer(faces, frames)
        self.outputs.append(out)
        return out

    def __getattr__(self, name):
        return getattr(self._scorer, name)


@pytest.fixture(scope="module")
def dev_videos(retinaface, student, mfn_onnx, shared_models):
    """Four videos of two people from ytf_aligned_dev, 16 evenly spaced crops each: the student's
    quality and embeddings, and MobileFaceNet's embeddings."""
    from vidfiqa.photos import PhotoPipeline

    root = need(DATA / "ytf_aligned_dev" / "aligned_images_DB")
    people = [p for p in sorted(root.iterdir()) if p.is_dir() and len([v for v in p.iterdir() if v.is_dir()]) >= 2][:2]
    pipeline_student = PhotoPipeline(retinaface, stages=[student], largest_only=True, chunk_size=16)
    pipeline_mfn = PhotoPipeline(retinaface, stages=[student, mfn_onnx], largest_only=True, chunk_size=16)
    videos = {}
    for person in people:
        for folder in sorted(v for v in person.iterdir() if v.is_dir())[:2]:
            frames = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem.split(".")[-1]))
            frames = [frames[i] for i in np.linspace(0, len(frames) - 1, FRAMES).astype(int)]
            q = np.full(FRAMES, np.nan)
            own = np.full((FRAMES, 128), np.nan, np.float32)
            mfn = np.full((FRAMES, mfn_onnx.embedding_dim), np.nan, np.float32)
            for i, (a, b) in enumerate(zip(pipeline_student.run(frames), pipeline_mfn.run(frames))):
                if a.faces is not None and len(a.faces) and b.faces is not None and len(b.faces):
                    q[i], own[i], mfn[i] = a.faces.quality[0], a.faces.embeddings[0], b.faces.embeddings[0]
            videos[f"{person.name}/{folder.name}"] = (q, mfn, own)
    return videos


def test_weighted_runs_from_the_best_frame_to_the_plain_mean(dev_videos):
    for q, e, _ in dev_videos.values():
        faces = np.isfinite(q)
        assert faces.sum() >= FRAMES - 2, "the detector finds the face in nearly every crop"
        mean = sv.mean_template(e[faces])
        assert np.allclose(weighted_template(e, q, float("inf")), mean, atol=1e-6)
        best = e[faces][np.argmax(q[faces])]
        assert np.allclose(weighted_template(e, q, 1e-4), best / np.linalg.norm(best), atol=1e-4)
        middle = weighted_template(e, q, 0.1)
        assert abs(np.linalg.norm(middle) - 1) < 1e-6
        # Between the two: closer to the best frame than the mean is, and weights favour quality.
        assert middle @ (best / np.linalg.norm(best)) >= mean @ (best / np.linalg.norm(best)) - 1e-9
        w = softmax_weights(q[faces], 0.1)
        assert np.isclose(w.sum(), 1) and w[np.argmax(q[faces])] == w.max()


def test_the_streaming_template_equals_the_batch_rule_and_splits_exactly(dev_videos):
    (q, _, own), (q2, _, own2) = list(dev_videos.values())[:2]
    builder = TemplateBuilder(0.1, model="test")
    for start in (8, 0, 12, 4):  # chunks out of order: the running maximum is rescaled
        builder.add(own[start : start + 4], q[start : start + 4])
    assert np.allclose(builder.template(), weighted_template(own, q, 0.1), atol=1e-5)
    assert builder.count == int(np.isfinite(q).sum())
    # Frames of another video added, then taken out again (a track split), leave the first.
    builder.add(own2, q2)
    builder.remove(own2, q2)
    assert np.allclose(builder.template(), weighted_template(own, q, 0.1), atol=1e-4)
    other = TemplateBuilder(0.1)
    other.add(own2, q2)
    both = merged([builder, other])
    assert np.allclose(both.template(), weighted_template(np.vstack([own, own2]), np.r_[q, q2], 0.1), atol=1e-5)
    record = both.record()
    assert record["rule"] == "weighted" and record["dim"] == 128 and np.isclose(np.linalg.norm(record["vector"]), 1, atol=1e-5)


def test_selected_is_the_pipelines_own_selection(dev_videos):
    """The eval's ``selected`` frames are those finish_track picks for a track of these faces."""
    from vidfiqa.faces import Faces
    from dataclasses import replace

    from vidfiqa.select import TrackHistory, finish_track
    from vidfiqa.select.rule import SelectionRule

    # The eval's rule leaves min_quality out (it is on the student's scale; see selected_frames).
    rule = replace(SelectionRule.default(), min_quality=None)

    for key, (q, _, own) in dev_videos.items():
        faces = np.flatnonzero(np.isfinite(q))
        times = np.arange(FRAMES) / sv.VIDEO_FPS
        history = TrackHistory(1, fps=sv.VIDEO_FPS, capacity=64, bucket_s=0.01)
        rows = Faces.create(np.tile([0.0, 0.0, 100.0, 100.0], (len(faces), 1)), np.zeros((len(faces), 5, 2)), np.ones(len(faces)),
                            frame_index=faces, timestamp=times[faces])
        rows = rows.replace(quality=q[faces].astype(np.float32), embeddings=own[faces])
        history.observe(rows)
        history.offer(rows)
        result = finish_track(history, "end_of_input", rule)
        picked = sorted(int(i) for i in result.chosen.frame_index)
        assert picked == list(selected_frames(q, times, own, rule)), key
        assert 1 <= len(picked) <= 3
        # The product's track template is the weighted rule over these faces.
        assert np.allclose(result.template.template(), weighted_template(own, q, result.template.temperature), atol=1e-5)


def test_eval_compares_every_rule_with_intervals(dev_videos):
    pairs = sv.extra_pairs(dev_videos)
    result = sv.evaluate_extra(dev_videos, pairs, ks=(3, None), rules=sv.SELECTIONS, temperature=0.1, bootstrap=50)
    labels = [sv.row_label(r) for r in result["results"]]
    assert labels == ["quality k=3", "all frames", "random k=3", "all frames", "first k=3", "all frames", "weighted", "selected k=3", "product"]
    scores = {label: sv.pair_scores(dev_videos, [p[:2] for p in pairs], r["k"], r["rule"], temperature=0.1)
              for label, r in zip(labels, result["results"])}
    same = np.array([p[2] for p in pairs])
    for label, s in scores.items():  # two people: every rule tells them apart
        assert s[same].min() > s[~same].max(), label
    for row in result["results"]:
        b = row["bootstrap"]
        assert b["low"] <= row["tar_at_far"] <= b["high"] and b["diff_low"] <= b["diff"] <= b["diff_high"]
    assert result["bootstrap"]["draws"] == 50


def test_the_manifest_template_is_the_named_models_weighted_embedding(tmp_path):
    """Every face the run scores is recorded; the named model, run again on those crops, gives
    the same weighted template as the manifest's track and person."""
    from vidfiqa.pipeline import RunSettings
    from vidfiqa.pipeline.run import VideoPipeline
    from vidfiqa.pipeline.models import Models
    from vidfiqa.quality.ediffiqa import EDifFIQA

    settings = RunSettings()
    models = Models.build(settings)
    recording = Recording(models.scorer)
    recorded = Models(models.detector, models.region_detector, models.aligner, recording, models.embedder)  # type: ignore[arg-type]
    manifest = VideoPipeline(settings, recorded).run(REPO / "samples" / "astronaut.mp4", tmp_path / "g")
    seen = [faces.crops for faces in recording.inputs]
    assert len(manifest["tracks"]) == 1 and len(manifest["persons"]) == 1
    track = manifest["tracks"][0]["template"]
    assert track["model"] == "ediffiqa_t_mfn_int8" and track["rule"] == "weighted" and track["dim"] == 128
    crops = np.concatenate(seen)
    assert track["faces"] == len(crops) == manifest["tracks"][0]["num_scored"]
    quality, embeddings = EDifFIQA(int8=True).score_and_embed(crops)
    expected = weighted_template(embeddings, quality, track["temperature"])
    vector = np.asarray(track["vector"])
    assert abs(np.linalg.norm(vector) - 1) < 1e-5 and vector @ expected > 0.99999
    assert np.allclose(manifest["persons"][0]["template"]["vector"], vector, atol=1e-6)
    on_disk = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert on_disk["persons"][0]["template"]["vector"] == manifest["persons"][0]["template"]["vector"]


def test_eval_selected_follows_the_preset_it_is_given(dev_videos, tmp_path):
    """`vidfiqa eval ytf --rule selected --config X` measures the selection of preset X, not a
    copy of the defaults: a preset that asks for frames far apart in time picks other frames of
    real YTF videos than the defaults do, the CLI's report names the rule it used, and its pair
    scores are those of the preset's templates."""
    from dataclasses import replace

    from click.testing import CliRunner

    from vidfiqa.cli import cli
    from vidfiqa.pipeline import make_settings

    preset = tmp_path / "apart.toml"
    preset.write_text("[select]\ndiversity = 0.8\nmin_gap_s = 0.3\n")
    default, apart = make_settings().selection_rule(), make_settings(preset).selection_rule()
    assert (apart.diversity, apart.min_gap_s, apart.top_k) == (0.8, 0.3, default.top_k)
    times = np.arange(FRAMES) / sv.VIDEO_FPS
    differ = [key for key, (q, _, own) in dev_videos.items()
              if list(selected_frames(q, times, own, default)) != list(selected_frames(q, times, own, apart))]
    assert differ, "the preset changes the picks of at least one real video"
    key = differ[0]
    q, mfn, own = dev_videos[key]
    expected = sv.mean_template(mfn[selected_frames(q, times, own, replace(apart, top_k=3))])
    assert np.allclose(sv.video_template(dev_videos, key, 3, "selected", selection=apart), expected)

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [(k, i, float(q[i]), None if np.isnan(q[i]) else [float(x) for x in mfn[i]])
            for k, (q, mfn, _) in dev_videos.items() for i in range(FRAMES)]
    schema = pa.schema([("video", pa.string()), ("frame_index", pa.int32()), ("quality", pa.float64()), ("embedding", pa.list_(pa.float32()))])
    scores = tmp_path / "scores.parquet"
    pq.write_table(pa.table([list(column) for column in zip(*rows)], schema=schema), scores)
    protocol = need(DATA / "ytf_protocol")
    reports = {}
    for name, args in (("default", []), ("apart", ["--config", str(preset)])):
        out = tmp_path / f"{name}.json"
        res = CliRunner().invoke(cli, ["eval", "ytf", str(scores), "--protocol", str(protocol), "--extra-pairs", "--rule", "selected",
                                       "--k", "3", "--bootstrap", "0", "--edc-frames", "0", "-o", str(out), *args])
        assert res.exit_code == 0, res.output
        reports[name] = json.loads(out.read_text())
    assert reports["apart"]["selection"]["diversity"] == 0.8 and reports["apart"]["selection"]["config"] == str(preset)
    assert reports["default"]["selection"]["diversity"] == default.diversity


def test_eval_product_rule_is_the_template_a_run_ships(tmp_path):
    """`vidfiqa eval ytf --rule product` on a real YouTube Faces video equals the template
    `vidfiqa run` writes into its manifest for that video (every frame analysed, the run's own
    scored crops and scores)."""
    from vidfiqa.pipeline import RunSettings
    from vidfiqa.pipeline.models import Models
    from vidfiqa.pipeline.run import VideoPipeline

    root = need(DATA / "ytf_aligned_dev" / "aligned_images_DB")
    folder = sorted(v for v in sorted(root.iterdir())[3].iterdir() if v.is_dir())[0]
    settings = RunSettings(fps_cap=0.0, fps=25.0)
    models = Models.build(settings)
    recording = Recording(models.scorer)
    recorded = Models(models.detector, models.region_detector, models.aligner, recording, models.embedder)  # type: ignore[arg-type]
    manifest = VideoPipeline(settings, recorded).run(folder, tmp_path / "g")
    assert len(manifest["tracks"]) == 1, "one person, one track"
    from vidfiqa.faces import Faces

    faces = Faces.concat(recording.outputs)
    order = np.argsort(faces.frame_index, kind="stable")
    videos = {"v": (faces.quality[order].astype(np.float64), faces.embeddings[order])}
    product = sv.video_template(videos, "v", None, "product")
    track = manifest["tracks"][0]["template"]
    assert track["faces"] == len(faces) > 20
    assert float(np.asarray(track["vector"]) @ product) > 0.99999
    # The eval's report names the row as the product's.
    result = sv.evaluate_extra({"v": videos["v"], "w": videos["v"]}, [("v", "w", True)], ks=(None,), rules=("product",))
    assert [sv.row_label(r) for r in result["results"]] == ["product"]
