"""smoothing.py: the average in time behaves the same at any frame rate,
forgets an old track, and a face missed for one frame is carried."""
import math

import numpy as np
import pytest

from ferkit.vision.records import Face
from ferkit.vision.smoothing import Smoother
from ferkit.vision.tracking import FaceTracks


def step_response(fps, time_constant=0.3, seconds=1.0):
    """The averaged probability of class 1 after the reading switches from class 0 to class 1 at t = 0."""
    smoother = Smoother(time_constant)
    smoother.update(0, -1.0 / fps, [1.0, 0.0])
    return [(k / fps, smoother.update(0, k / fps, [0.0, 1.0])[1]) for k in range(int(seconds * fps) + 1)]


def test_a_change_crosses_halfway_after_the_same_time_at_any_frame_rate():
    for fps in (5, 30, 60):
        halfway = next(t for t, p in step_response(fps) if p >= 0.5)
        # 1 - exp(-(t + 1/fps) / 0.3) >= 0.5 from t = 0.3 ln 2 - 1/fps on, to the frame.
        assert halfway == pytest.approx(0.3 * math.log(2) - 1 / fps, abs=1 / fps + 1e-9)
    assert step_response(30)[-1][1] > 0.95  # Settled within a second.


def test_a_steady_reading_stays_and_an_old_track_starts_afresh():
    smoother = Smoother(0.3)
    for k in range(10):
        np.testing.assert_allclose(smoother.update("a", k / 30, [0.2, 0.8]), [0.2, 0.8], rtol=1e-6)
    np.testing.assert_allclose(smoother.update("a", 10.0, [1.0, 0.0]), [1.0, 0.0])  # Unseen for 9.7 s.
    with pytest.raises(ValueError, match="positive seconds"):
        Smoother(0)


def test_noise_on_a_still_face_is_damped():
    rng = np.random.default_rng(0)
    smoother = Smoother(0.3)
    raw = np.clip(0.56 + rng.normal(0, 0.1, 300), 0, 1)  # A face leaning to class 0, read with noise.
    smoothed = np.array([smoother.update(0, k / 30, [p, 1 - p])[0] for k, p in enumerate(raw)])
    assert smoothed[30:].std() < raw.std() / 2.5
    raw_changes = np.sum(np.diff(raw > 0.5) != 0)
    assert np.sum(np.diff(smoothed[30:] > 0.5) != 0) < raw_changes / 5


def test_a_face_missed_for_one_frame_is_carried_at_its_last_box():
    tracks = FaceTracks(time_constant=0.3)
    face = Face((10, 10, 50, 50), np.array([0.9, 0.1], np.float32), None)
    first = tracks.update(0, 0.0, [face])
    assert [(r.track, r.carried) for r in first] == [(0, False)]
    carried = tracks.update(1, 1 / 30, [])
    assert [(r.track, r.carried, r.face.box, r.raw) for r in carried] == [(0, True, (10, 10, 50, 50), None)]
    assert tracks.update(2, 2 / 30, []) == []  # Carried once, then gone.
    back = tracks.update(3, 3 / 30, [face._replace(box=(12, 10, 50, 50))])
    assert [(r.track, r.carried) for r in back] == [(0, False)]  # The same track again.


def test_without_smoothing_the_frames_own_probabilities_are_shown():
    tracks = FaceTracks(time_constant=0)
    for k, p in enumerate(([0.9, 0.1], [0.1, 0.9])):
        (reading,) = tracks.update(k, k / 30, [Face((0, 0, 9, 9), np.array(p, np.float32), None)])
        np.testing.assert_array_equal(reading.face.probabilities, np.array(p, np.float32))
