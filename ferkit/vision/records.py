"""The record of one face, as emotions.py's --json, serve.py's answers and
EmotionReader give it, and the Face an analysis yields."""
from collections import namedtuple

import numpy as np

from ferkit.data.fer2013 import CLASS_NAMES

Face = namedtuple("Face", ["box", "probabilities", "keypoints"])


def record(path, box, probabilities, names=CLASS_NAMES, frame=None, seconds=None, face=None, keypoints=None):
    """One face (or, with box None, a photo without one) as emotions.py's
    --json and serve.py's answers give it; names: the model's classes, in
    output order; keypoints: BlazeFace's six (x, y) points, or None."""
    from ferkit.vision.blazeface import KEYPOINTS

    return {
        "file": path, "frame": frame, "time": None if seconds is None else round(seconds, 3), "face": face,
        "box": None if box is None else [int(v) for v in box],
        "keypoints": None if keypoints is None else
        {name: [round(float(x), 1), round(float(y), 1)] for name, (x, y) in zip(KEYPOINTS, keypoints)},
        "probabilities": None if probabilities is None else
        {name: round(float(p), 5) for name, p in zip(names, probabilities)},
        "emotion": None if probabilities is None else names[int(np.argmax(probabilities))],
    }


def face_records(path, found, names):
    """The records of a picture's faces (records.Face), numbered from 0; a
    face becomes a record here and in video_record, nowhere else."""
    return [record(path, f.box, f.probabilities, names, face=i, keypoints=f.keypoints) for i, f in enumerate(found)]


def video_record(path, frame, seconds, reading, names, smooth):
    """A video face's record (record above) from a tracking.Reading: with
    smoothing on, the frame's own probabilities as raw_probabilities (None
    for a carried face), and carried: true for a face carried on."""
    face = reading.face
    r = record(path, face.box, face.probabilities, names, frame=frame, seconds=seconds, face=reading.track,
               keypoints=face.keypoints)
    if smooth:
        r["raw_probabilities"] = None if reading.raw is None else \
            {n: round(float(p), 5) for n, p in zip(names, reading.raw)}
    if reading.carried:
        r["carried"] = True
    return r
