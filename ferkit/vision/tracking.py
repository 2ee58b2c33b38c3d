"""The faces of a video or a camera stream followed from frame to frame:
each box given a track (Tracker), its probabilities smoothed in time
(smoothing.Smoother), a face missed for a frame carried on (FaceTracks)."""
from collections import namedtuple

from ferkit.vision.boxes import xywh_iou as iou
from ferkit.vision.records import Face
from ferkit.vision.smoothing import DEFAULT_TIME_CONSTANT, Smoother


# A box continues a track when it overlaps the track's last box at least this
# much (intersection over union); the page follows its face by the same rule.
TRACK_IOU = 0.3


class Tracker:
    """Gives each face in a video a track number: a box continues the track
    whose last box overlaps it most (intersection over union >= TRACK_IOU)."""

    def __init__(self, min_iou=TRACK_IOU, max_gap=30):
        self.tracks, self.next_id, self.min_iou, self.max_gap = {}, 0, min_iou, max_gap

    def assign(self, frame, boxes):
        alive = {t: (f, b) for t, (f, b) in self.tracks.items() if frame - f <= self.max_gap}
        pairs = sorted(((iou(b, box), t, i) for t, (_, b) in alive.items() for i, box in enumerate(boxes)), reverse=True)
        ids, used = [None] * len(boxes), set()
        for overlap, track, i in pairs:
            if overlap < self.min_iou:
                break
            if ids[i] is None and track not in used:
                ids[i] = track
                used.add(track)
        for i, box in enumerate(boxes):
            if ids[i] is None:
                ids[i], self.next_id = self.next_id, self.next_id + 1
            self.tracks[ids[i]] = (frame, box)
        return ids


# One face of one frame (FaceTracks.update): the face as shown (smoothed),
# its track, the frame's own probabilities (None where carried), carried or not.
Reading = namedtuple("Reading", ["face", "track", "raw", "carried"])


class FaceTracks:
    """The faces of a video or a camera stream, frame after frame: each given
    its track (Tracker), its probabilities smoothed in time (Smoother,
    unless time_constant is 0), and a face found in the frame before but
    missed in this one carried on for up to `carry` frames, at its last box
    (the detector misses a frame now and then; the face has not gone).

    update() returns [Reading], which has the face, its track, the frame's
    own probabilities (raw; None for a carried face) and whether it was carried."""

    def __init__(self, time_constant=DEFAULT_TIME_CONSTANT, carry=1, max_gap=30):
        self.tracker = Tracker(max_gap=max_gap)
        self.smoother = Smoother(time_constant) if time_constant else None
        self.carry = carry
        self.last = {}  # track -> (Face as last shown, frames missed since)

    def update(self, frame, seconds, found):
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
