"""Face detectors, each a callable from an RGB image to [Detection]: a box
(x, y, w, h) in the image's pixels and, where the detector gives them, six
keypoints (see blazeface.KEYPOINTS) for alignment.

- blazeface (the default): MediaPipe's BlazeFace, full-range model, on ONNX
  Runtime. Photos (thorough=True) are also searched in half-overlapping
  480-pixel windows, so faces down to about 40 pixels are found in large
  photos; video and camera frames get one pass.
- haar: OpenCV's frontal-face Haar cascade, the detector FER2013 was cut
  with (Viola and Jones, 2001): upright, frontal faces only, no keypoints.
- mtcnn: MTCNN (the mtcnn package, on TensorFlow).
"""
import os
from collections import namedtuple

import numpy as np

from ferkit.vision.images import downscale, to_gray

DETECT_SIDE = 640  # Haar and MTCNN search a copy whose longer side is at most this.
# A video's and the page's camera's faces: the full detector every
# DETECT_EVERY frames, each face followed in between (DetectEvery), chosen by
# bench.py jitter and bench.py emotions (report 13).
DETECT_EVERY = 5
TILE_SIDE = 480  # BlazeFace's windows over a photo (a 40-pixel face fills 16 of the model's 192).

Detection = namedtuple("Detection", ["box", "keypoints"])


class HaarDetector:
    """OpenCV's frontal-face Haar cascade, the detector FER2013 was made with."""

    name = "haar"

    def __init__(self, detect_side=DETECT_SIDE):
        import cv2

        path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"OpenCV's Haar cascade is missing ({path}); opencv-python-headless<5 ships it")
        self.detect_side = detect_side

    def __call__(self, rgb, thorough=False):
        """Boxes (x, y, w, h) in the image's pixels, left to right."""
        small, factor = downscale(to_gray(rgb), self.detect_side)
        min_side = max(20, round(min(small.shape) * 0.04))
        found = self.cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        boxes = sorted(tuple(int(round(v / factor)) for v in box) for box in np.reshape(found, (-1, 4)))
        return [Detection(box, None) for box in boxes]


class MtcnnDetector:
    """MTCNN (the mtcnn package, on TensorFlow): slower, finds turned and
    smaller faces that the Haar cascade misses."""

    name = "mtcnn"

    def __init__(self, detect_side=DETECT_SIDE, min_confidence=0.9):
        try:
            from mtcnn import MTCNN
        except ImportError:
            raise RuntimeError("--detector mtcnn needs the mtcnn package: pip install mtcnn==1.0.0") from None
        self.mtcnn = MTCNN(stages="face_detection_only")
        self.detect_side, self.min_confidence = detect_side, min_confidence

    def __call__(self, rgb, thorough=False):
        small, factor = downscale(rgb, self.detect_side)
        found = self.mtcnn.detect_faces(small, box_format="xywh")
        boxes = sorted(tuple(int(round(v / factor)) for v in face["box"])
                       for face in found if face["confidence"] >= self.min_confidence and min(face["box"][2:]) > 0)
        return [Detection(box, None) for box in boxes]


class BlazeFaceDetector:
    """BlazeFace (blazeface.py) on ONNX Runtime: boxes and six keypoints."""

    name = "blazeface"

    def __init__(self, detect_side=DETECT_SIDE, kind="full", tile_side=TILE_SIDE):
        from ferkit.vision.blazeface import BlazeFace

        self.model = BlazeFace(kind)
        self.tile_side = tile_side

    def __call__(self, rgb, thorough=False):
        found = self.model(rgb, tile_side=self.tile_side if thorough else None, fast=not thorough)
        return [Detection(box, keypoints) for box, keypoints, _ in found]

    def start_following(self, rgb, detections):
        """What follow() needs to carry these faces, found by the full pass
        in this frame, into the next frames: for each face, its detection
        and the refit (BlazeFace.refit, the short-range model near its box)
        in this same frame. None if a face cannot be refitted (the next
        frame then gets the full pass too)."""
        state = []
        for detection in detections:
            refit = self.model.refit(rgb, detection.box)
            if refit is None:
                return None
            state.append((detection, refit, refit))
        return state

    def follow(self, rgb, state):
        """(the faces in this frame, the state for the next) or None where a
        face was lost. Each face is refitted near where its refit was in the
        frame before, and its full-pass detection moved by what the refit
        moved: the box by the refit box's shift and scale, each keypoint by
        the refit keypoint's shift. So a followed face keeps the full pass's
        geometry (the short-range model places boxes some 8% of a side lower
        and keypoints up to a tenth of the eyes' distance elsewhere: report
        13), and only the motion comes from the cheaper model."""
        from ferkit.vision.blazeface import in_frame, moved_with

        followed, moved = [], []
        for detection, first, last in state:
            now = self.model.refit(rgb, last[0])
            if now is None:
                return None
            (x, y, w, h), keypoints = moved_with(detection.box, detection.keypoints, first, now)
            box = in_frame((x, y, x + w, y + h), rgb.shape[1], rgb.shape[0])  # As the full pass gives boxes.
            if box is None:
                return None
            moved.append(Detection(box, keypoints))
            followed.append((detection, first, now))
        return moved, followed


class DetectEvery:
    """A video's or a camera's detector: the full pass every `every` frames
    and wherever a followed face is lost, the faces of the frame before
    followed (the detector's start_following and follow: BlazeFace's refit
    near each box) in between. A frame after one with no face gets the full
    pass (there is nothing to follow, and a face must not be missed for k
    frames because the detector missed it once); a new face beside a
    followed one is found at the next full pass, at most every - 1 frames
    late. A detector that cannot follow (Haar, MTCNN) runs on every frame.
    Call it with the frames in order."""

    def __init__(self, detector, every=1):
        if every < 1:
            raise ValueError("detect every: at least 1 (every frame)")
        self.detector, self.every = detector, every
        self.state, self.since = None, 0
        self.full_passes = self.followed = 0  # What it did, for the benchmarks.

    def __call__(self, rgb, thorough=False):
        if self.state is not None and self.since + 1 < self.every:
            result = self.detector.follow(rgb, self.state)
            if result is not None:
                found, self.state = result
                self.since += 1
                self.followed += 1
                return found
        found = self.detector(rgb, thorough=thorough)
        self.full_passes, self.since = self.full_passes + 1, 0
        can_follow = found and self.every > 1 and hasattr(self.detector, "follow")
        self.state = self.detector.start_following(rgb, found) if can_follow else None
        return found


DETECTORS = {"blazeface": BlazeFaceDetector, "haar": HaarDetector, "mtcnn": MtcnnDetector}
