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

import numpy as np

DEFAULT_TIME_CONSTANT = 0.3  # Seconds.
# A video's or a camera's faces are read in one view, not averaged with
# their mirror images as a photo's are: their readings are averaged over
# time here anyway, and on bench.py jitter's clips the flip bought no
# steadiness (report 13). emotions.py --video-tta flip brings it back.
VIDEO_TTA = "none"
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
