"""Degradations: seeded, reproducible from their text form, stronger when more severe."""

from __future__ import annotations

import numpy as np
import pytest

from vidfiqa import degrade


def test_degradations_are_deterministic_and_round_trip(astronaut):
    crop = astronaut[40:152, 160:272].copy()
    rng = np.random.default_rng(3)
    for _ in range(30):
        chain = degrade.sample(rng, kinds=degrade.ALL_KINDS)
        text = degrade.chain_to_text(chain)
        once, again = degrade.apply(crop, chain), degrade.apply(crop, text)
        assert once.dtype == np.uint8 and once.shape == crop.shape
        assert np.array_equal(once, again), text


@pytest.mark.parametrize("kind", degrade.ALL_KINDS)
def test_each_degradation_changes_the_crop_more_when_severe(astronaut, kind):
    crop = astronaut[40:152, 160:272].copy()
    mild = degrade.apply(crop, degrade._sample_one(kind, np.random.default_rng(0), 0.1))
    severe = degrade.apply(crop, degrade._sample_one(kind, np.random.default_rng(0), 1.0))
    d_mild = np.abs(mild.astype(int) - crop).mean()
    d_severe = np.abs(severe.astype(int) - crop).mean()
    assert d_severe > d_mild and d_severe > 3
