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
        found = self.model(rgb, tile_side=self.tile_side if thorough else None)
        return [Detection(box, keypoints) for box, keypoints, _ in found]


DETECTORS = {"blazeface": BlazeFaceDetector, "haar": HaarDetector, "mtcnn": MtcnnDetector}
