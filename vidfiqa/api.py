"""The Python API: the same work as the CLI commands, as plain function calls."""

from __future__ import annotations

import os
from typing import Iterable, Iterator


def score_images(
    inputs: Iterable[str | os.PathLike],
    method: str = "ediffiqa",
    aligned: bool = False,
    all_faces: bool = False,
    detector: str = "retinaface",
    detector_model=None,
    input_size: int = 640,
    device: str = "cpu",
    method_options: dict | None = None,
    batch_size: int = 64,
    components: bool = False,
) -> Iterator[dict]:
    """Quality of the faces in image files/folders, one dict per face (or per failed input).

    Each dict: ``path``, ``face`` (index within the image, or None), ``quality`` (float, or None
    when the image could not be read or holds no face), ``error`` (why not), ``box`` (x1, y1, x2, y2
    in image pixels, or None), ``read`` (the image was decoded and searched: False when it, or
    the folder named, could not be read).  ``components``: each face's dict also has
    ``components``, {name: value or None} (``vidfiqa.components.NAMES``); head pose is None for
    ``aligned`` crops (no landmarks were found on them).
    """
    from .components import component_dict
    from .detect import make_detector
    from .photos import PhotoPipeline
    from .quality import make_scorer

    scorer = make_scorer(method, **(method_options or {}))
    if aligned and getattr(scorer, "needs_faces", False):
        from .errors import ConfigError

        raise ConfigError(f"{method} needs detections (face size, detector score); it cannot score --aligned crops")
    det = None if aligned else make_detector(detector, model_path=detector_model, device=device, input_size=input_size, small_faces=True)
    stages = [scorer]
    if components:
        stages.append(_components_stage(scorer, aligned))
    pipeline = PhotoPipeline(det, stages=stages, largest_only=not all_faces, aligned_input=aligned, chunk_size=batch_size)
    for result in pipeline.run(inputs):
        if result.faces is None or len(result.faces) == 0:
            yield {"path": str(result.path), "face": None, "quality": None, "error": result.error, "box": None, "read": result.faces is not None}
            continue
        assert result.faces.quality is not None  # the scorer stage sets it
        for i in range(len(result.faces)):
            yield {
                "path": str(result.path),
                "face": i,
                "quality": float(result.faces.quality[i]),
                "error": None,
                "box": [float(v) for v in result.faces.boxes[i]],
                "read": True,
                **({"components": component_dict(result.faces.components[i], digits=4)} if result.faces.components is not None else {}),
            }


def _components_stage(scorer, aligned: bool):
    """The photo stage that adds quality components after ``scorer``.  Occlusion reads the
    bundled student's embedding: when another method scores, the student embeds the faces too."""
    import numpy as np

    from .components import ComponentMeter
    from .components.meter import INDEX
    from .quality.ediffiqa import EDifFIQA

    meter = ComponentMeter("ediffiqa_t_mfn")
    own = isinstance(scorer, EDifFIQA) and scorer.model_name in ("ediffiqa_t_mfn", "ediffiqa_t_mfn_int8")
    student = None if own else EDifFIQA()

    def stage(faces, frames):
        if student is not None and len(faces):
            faces = faces.replace(embeddings=student.score_and_embed(faces.crops)[1])
        faces = meter.photo_stage(faces, frames)
        if aligned and faces.components is not None:  # the template's landmarks, not the face's
            components = faces.components.copy()
            components[:, [INDEX["yaw"], INDEX["pitch"], INDEX["roll"]]] = np.nan
            faces = faces.replace(components=components)
        return faces

    return stage


def score(inputs, method: str = "ediffiqa", **kwargs) -> list[dict]:
    """List form of :func:`score_images`."""
    return list(score_images(inputs, method=method, **kwargs))
