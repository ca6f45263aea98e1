"""Scene-cut detection between frames."""

from __future__ import annotations

import numpy as np

from vidfiqa.video.shots import SceneCutDetector


def test_scene_cut_fires_on_cuts_not_on_fades(astronaut):
    detector = SceneCutDetector(0.55)
    assert not detector(astronaut)
    for gain in np.linspace(1.0, 0.3, 15):  # the lights go down gradually
        assert not detector((astronaut * gain).astype(np.uint8))
    other = np.ascontiguousarray(astronaut[::-1, ::-1, ::-1])  # a different shot (colours swapped)
    assert detector(other)
