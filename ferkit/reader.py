"""ferkit's public API: the emotions of the faces in a picture or a video.

    from ferkit import EmotionReader
    reader = EmotionReader()                      # the released model, BlazeFace, flip TTA
    faces = reader.read("photo.jpg")              # or a NumPy image, or a PIL image

Each face is the record `emotions.py --json` writes: `box` [x, y, w, h] in
the picture's pixels, `keypoints` (eyes, nose tip, mouth, ears), calibrated
`probabilities` (one per class) and `emotion`. Nothing is printed; a bad
file or model raises an exception with a one-line message (DataError,
ModelFileError). An .onnx model runs on ONNX Runtime without TensorFlow.
"""
import os

import numpy as np

from ferkit import cli
from ferkit.detectors import DETECT_SIDE, DETECTORS
from ferkit.errors import DataError, ModelFileError  # noqa: F401  (what read() raises, importable from here)
from ferkit.faces import Analyser
from ferkit.inference import OnnxModel, Predictor, is_onnx
from ferkit.records import record, video_record
from ferkit.smoothing import DEFAULT_TIME_CONSTANT
from ferkit.tracking import FaceTracks


class EmotionReader:
    """Reads faces and their emotions.

    model: a .onnx or .keras file (default: the released FER+ model's ONNX
    copy, which emotions.py and serve.py use); detector: blazeface, haar or
    mtcnn; tta: "flip" averages each face with its mirror image, "none" does
    not; align: turn each face so its eyes are level."""

    def __init__(self, model=None, detector="blazeface", tta="flip", align=True):
        path = os.fspath(model) if model is not None else cli.released_model(cli.EMOTIONS_MODEL, prefer_onnx=True)
        if detector not in DETECTORS:
            raise ValueError(f"detector {detector!r}: one of {', '.join(sorted(DETECTORS))}")
        if is_onnx(path):
            loaded = OnnxModel(path)
        else:  # TensorFlow only here, for a Keras file.
            from ferkit.models import load_model
            from ferkit.precision import resolve

            loaded = load_model(path, resolve("auto"))
        self.model_path = path
        self.analyser = Analyser(Predictor([loaded], tta), detector, DETECT_SIDE, align)
        self.class_names = self.analyser.class_names

    def read(self, image, bgr=None):
        """The faces in one picture: a path, a PIL image, or a NumPy uint8
        image, H x W grey or H x W x 3 colour (x 4 with alpha). A NumPy colour
        image is taken as BGR, as cv2.imread gives it (and as OpenCV-based
        libraries take it); pass bgr=False for RGB. Returns a list of face
        records, empty when no face is found. Photos are searched closely
        (BlazeFace's windows), as emotions.py searches them."""
        name, rgb = as_rgb(image, bgr)
        found = self.analyser.faces([rgb], thorough=True)[0]
        return [record(name, f.box, f.probabilities, self.class_names, face=i, keypoints=f.keypoints)
                for i, f in enumerate(found)]

    def read_video(self, path, every=1, smooth=DEFAULT_TIME_CONSTANT):
        """Yields, for every `every`th frame of a video, (frame index, time
        in seconds, [face records]); each record's `face` is its track
        number. smooth: the time constant in seconds of each track's
        smoothing (smoothing.Smoother), 0 for none; the records then keep
        the frame's own values as `raw_probabilities`. A face missed for one
        frame is carried at its last box (`carried`: true)."""
        import cv2

        path = os.fspath(path)
        if every < 1:
            raise ValueError("every must be at least 1")
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            raise DataError(path, "no such file" if not os.path.exists(path) else "cannot be opened as a video")
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        tracks = FaceTracks(smooth, max_gap=30 * every)
        index = 0
        try:
            while True:
                if index % every:
                    if not capture.grab():
                        break
                    index += 1
                    continue
                ok, bgr = capture.read()
                if not ok:
                    break
                seconds = index / fps
                found = self.analyser.faces([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)])[0]
                readings = tracks.update(index, seconds, found)
                yield index, round(seconds, 3), [video_record(path, index, seconds, r, self.class_names, smooth)
                                                 for r in readings]
                index += 1
        finally:
            capture.release()
        if index == 0:
            raise DataError(path, "no frames could be read (not a video, or a damaged one)")


def as_rgb(image, bgr=None):
    """(a name for the records, the picture as H x W x 3 uint8 RGB)."""
    from ferkit.images import read_image, to_rgb8

    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        return path, read_image(path)
    if hasattr(image, "convert") and hasattr(image, "size"):  # A PIL image: converted as read_image converts a file's.
        return None, to_rgb8(image)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"a NumPy image must be uint8 (0-255), got {array.dtype}")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 1):
        grey = array.reshape(array.shape[:2])
        return None, np.repeat(grey[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"a NumPy image is H x W, H x W x 3 or H x W x 4, got shape {array.shape}")
    colour = array[:, :, :3]
    if bgr is None or bgr:
        colour = colour[:, :, ::-1]
    return None, np.ascontiguousarray(colour)
