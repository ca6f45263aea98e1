"""The PyTorch runner of our ONNX models (vidfiqa/onnx_torch.py), the GPU path where onnxruntime
has no CUDA provider: on the CPU here it must give what onnxruntime gives, on real frames."""

from __future__ import annotations

import av
import numpy as np
import pytest

from conftest import DATA, need
from vidfiqa.onnx_torch import OnnxTorch, TorchSession

CROWD = DATA / "videos" / "facenetpytorch_street_crowd.mp4"


@pytest.fixture(scope="module")
def crowd_frames() -> list[np.ndarray]:
    with av.open(str(need(CROWD))) as container:
        return [f.to_ndarray(format="rgb24") for k, f in zip(range(60), container.decode(video=0)) if k % 20 == 0]


def test_the_detector_run_by_pytorch_finds_what_onnxruntime_finds(crowd_frames):
    from retinaface.weights import WEIGHTS

    from vidfiqa.detect import RetinaFaceDetector

    reference = RetinaFaceDetector(threads=2)
    swapped = RetinaFaceDetector(threads=2)
    swapped.session = TorchSession(WEIGHTS, device="cpu")
    assert swapped.session.get_providers() == ["PyTorch (cpu)"]
    expected, found = reference.detect(crowd_frames), swapped.detect(crowd_frames)
    assert len(expected) >= 15 and len(found) == len(expected)
    np.testing.assert_allclose(found.boxes, expected.boxes, atol=0.05)
    np.testing.assert_allclose(found.landmarks, expected.landmarks, atol=0.05)
    np.testing.assert_allclose(found.scores, expected.scores, atol=1e-4)


def test_the_student_run_by_pytorch_scores_what_onnxruntime_scores(crowd_frames, retinaface):
    from vidfiqa.align import Aligner
    from vidfiqa.quality.ediffiqa import BUNDLED_ONNX, EDifFIQA

    faces = retinaface.detect(crowd_frames)
    aligned = Aligner()(faces, crowd_frames)
    reference = EDifFIQA()
    swapped = EDifFIQA()
    swapped.session = TorchSession(BUNDLED_ONNX, device="cpu")
    assert swapped.session.get_outputs()[0].shape == [None, 128]
    expected, scored = reference(aligned), swapped(aligned)
    assert len(scored) >= 15
    np.testing.assert_allclose(scored.quality, expected.quality, atol=1e-4)
    np.testing.assert_allclose(scored.embeddings, expected.embeddings, atol=1e-4)


def test_an_operator_it_does_not_know_is_a_clear_error():
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Tanh", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    with pytest.raises(ValueError, match="operators not supported: Tanh"):
        OnnxTorch(helper.make_model(graph))
    assert onnx  # the model above is plain ONNX
