"""The Analyser that emotions.py, serve.py and EmotionReader share: detect
(detectors.py), crop as FER2013's faces were (crops.py) and classify
(inference.Predictor), one path for photos, videos and the page. The record
each face becomes is records.py's; drawing.py draws them; tracking.py
follows them through a video.
"""
import numpy as np

from ferkit.vision.crops import face_crop
from ferkit.vision.detectors import DETECT_SIDE, DETECTORS
from ferkit.vision.images import to_gray
from ferkit.vision.records import Face


class Analyser:
    """Detect, crop (aligned where the detector gives eyes) and classify: one
    detector and one predictor (inference.Predictor) for every image, the
    same for emotions.py and serve.py, so photos, videos and the web page
    share one path."""

    def __init__(self, predictor, detector="blazeface", detect_size=DETECT_SIDE, align=True):
        self.detector_name = detector
        self.detector = DETECTORS[detector](detect_size)
        self.align = align
        self.predict = predictor
        self.class_names = predictor.class_names

    def faces(self, rgbs, thorough=False, detect=None, tta=None):
        """For each image: [Face(box, probabilities, keypoints)], all faces
        classified in one batch. thorough: photos, searched more closely
        (BlazeFace's windows); off for video and camera frames. detect: a
        detector to use instead (a video's detectors.DetectEvery, which sees
        the frames in order); tta: the predictor's TTA for these images
        instead of its own."""
        detect = detect or self.detector
        found = [detect(rgb, thorough=thorough) for rgb in rgbs]
        grays = [to_gray(rgb) if hits else None for rgb, hits in zip(rgbs, found)]
        crops = [face_crop(gray, d, self.detector_name, self.align) for gray, hits in zip(grays, found) for d in hits]
        probabilities = iter(self.predict(np.stack(crops), tta) if crops else [])
        return [[Face(d.box, next(probabilities), d.keypoints) for d in hits] for hits in found]
