"""Steady readings over time: each face track's probabilities averaged
exponentially over the last moments of a video or camera stream.

A frame's reading of a still face moves with the detector's box, the
camera's noise and the light; read alone, a face between two emotions
flickers from one to the other several times a second. The average here
weighs a reading by how long ago it was taken, not by how many frames ago,
so it behaves the same at 5 and at 60 frames a second: after a real change
of expression the average crosses halfway in time_constant x ln 2 seconds
(0.21 s at the default 0.3 s). bench.py jitter measures both sides.
"""
import math
from collections import namedtuple

import numpy as np

DEFAULT_TIME_CONSTANT = 0.3  # Seconds.
# A track unseen for longer than this many time constants starts afresh.
FORGET_AFTER = 10


class Smoother:
    """Exponential moving average of each track's probabilities in time."""

    def __init__(self, time_constant=DEFAULT_TIME_CONSTANT):
        if not time_constant > 0:
            raise ValueError(f"the smoothing time constant must be positive seconds, got {time_constant}")
        self.time_constant = time_constant
        self.tracks = {}  # track -> (seconds of the last reading, averaged probabilities)

    def update(self, track, seconds, probabilities):
        """The track's averaged probabilities after a reading at `seconds`."""
        probabilities = np.asarray(probabilities, np.float64)
        last = self.tracks.get(track)
        if last is None or not 0 <= seconds - last[0] <= FORGET_AFTER * self.time_constant \
                or len(last[1]) != len(probabilities):
            average = probabilities
        else:
            weight = 1.0 - math.exp(-(seconds - last[0]) / self.time_constant)
            average = last[1] + weight * (probabilities - last[1])
        self.tracks[track] = (seconds, average)
        return average.astype(np.float32)


# One face of one frame (FaceTracks.update): the face as shown (smoothed),
# its track, the frame's own probabilities (None where carried), carried or not.
Reading = namedtuple("Reading", ["face", "track", "raw", "carried"])


class FaceTracks:
    """The faces of a video or a camera stream, frame after frame: each given
    its track (faces.Tracker), its probabilities smoothed in time (Smoother,
    unless time_constant is 0), and a face found in the frame before but
    missed in this one carried on for up to `carry` frames, at its last box
    (the detector misses a frame now and then; the face has not gone).

    update() returns [Reading], which has the face, its track, the frame's
    own probabilities (raw; None for a carried face) and whether it was carried."""

    def __init__(self, time_constant=DEFAULT_TIME_CONSTANT, carry=1, max_gap=30):
        from ferkit.faces import Tracker

        self.tracker = Tracker(max_gap=max_gap)
        self.smoother = Smoother(time_constant) if time_constant else None
        self.carry = carry
        self.last = {}  # track -> (Face as last shown, frames missed since)

    def update(self, frame, seconds, found):
        from ferkit.faces import Face, iou

        tracks = self.tracker.assign(frame, [f.box for f in found])
        readings = []
        for track, face in zip(tracks, found):
            shown = face
            if self.smoother is not None:
                shown = Face(face.box, self.smoother.update(track, seconds, face.probabilities), face.keypoints)
            readings.append(Reading(shown, track, face.probabilities, False))
        seen = set(tracks)
        for track, (face, missed) in list(self.last.items()):
            if track in seen:
                continue
            if missed < self.carry and not any(iou(face.box, f.box) > 0 for f in found):
                readings.append(Reading(face, track, None, True))
                self.last[track] = (face, missed + 1)
            else:
                del self.last[track]
        for reading in readings:
            if not reading.carried:
                self.last[reading.track] = (reading.face, 0)
        return readings
