"""ferkit's inference core and public API: the emotions of the faces in a
picture or a video. `emotions.py`, the server and the benchmarks read faces
through it too, so every door runs the same pipeline.

    from ferkit import EmotionReader
    reader = EmotionReader()                      # the released model, BlazeFace, flip TTA
    faces = reader.read("photo.jpg")              # or a NumPy image, a PIL image, or an encoded file's bytes

Each face is the record `emotions.py --json` writes: `box` [x, y, w, h] in
the picture's pixels, `keypoints` (eyes, nose tip, mouth, ears), calibrated
`probabilities` (one per class) and `emotion`. Nothing is printed; a bad
file or model raises an exception with a one-line message (DataError,
ModelFileError, ValueError). An .onnx model runs on ONNX Runtime without
TensorFlow.
"""
import io
import os
from collections import namedtuple

import numpy as np

from ferkit import paths
from ferkit.vision.detectors import DETECT_EVERY, DETECT_SIDE, DETECTORS, DetectEvery
from ferkit.errors import DataError, ModelFileError  # noqa: F401  (what read() raises, importable from here)
from ferkit.vision.faces import Analyser
from ferkit.infer.inference import Predictor, is_onnx, open_model
from ferkit.vision.records import face_records, video_record
from ferkit.vision.smoothing import DEFAULT_TIME_CONSTANT, VIDEO_TTA
from ferkit.vision.tracking import FaceTracks

# One frame of a video as EmotionReader.frames yields it: faces and records
# are None for a frame that was not analysed (see `every`), rgb None for one
# that was not decoded.
VideoFrame = namedtuple("VideoFrame", ["index", "seconds", "rgb", "faces", "records"])
# Frames whose faces are classified in one batch: a video's faces cost one
# model call per chunk instead of one per frame.
CHUNK = 16


class EmotionReader:
    """Reads faces and their emotions: the model, the detector, the crop, the
    classification, the face records and the video loop, in one place.

    model: a .onnx or .keras file (default: the released FER+ model's int8
    ONNX copy); detector: blazeface, haar or mtcnn; tta: "flip" averages
    each face of a photo with its mirror image, "none" does not; video_tta:
    the same for a video's frames; detect_every: a video's full detector
    pass every this many analysed frames, the faces followed in between (1:
    every frame); align: turn each face so its eyes are level; precision: a
    .keras model's (precision.py); detect_size: haar's and mtcnn's working
    size (BlazeFace has its own)."""

    def __init__(self, model=None, detector="blazeface", tta="flip", align=True, precision="auto",
                 detect_size=DETECT_SIDE, video_tta=VIDEO_TTA, detect_every=DETECT_EVERY):
        path = os.fspath(model) if model is not None else paths.released_model(paths.EMOTIONS_MODEL, prefer_onnx=True, int8=True)
        if detector not in DETECTORS:
            raise ValueError(f"detector {detector!r}: one of {', '.join(sorted(DETECTORS))}")
        for name, value in (("tta", tta), ("video_tta", video_tta)):
            if value not in ("none", "flip"):
                raise ValueError(f"{name} {value!r}: 'flip' or 'none'")
        if not isinstance(detect_every, int) or detect_every < 1:
            raise ValueError(f"detect_every {detect_every!r}: a whole number of frames, at least 1")
        self.video_tta, self.detect_every = video_tta, detect_every
        loaded, self.precision = open_model(path, precision)  # The precision resolved, once.
        self.model_path = path
        self.runtime = "onnxruntime" if is_onnx(path) else "tensorflow"
        self.analyser = Analyser(Predictor([loaded], tta), detector, detect_size, align)
        self.class_names = self.analyser.class_names

    def faces(self, rgbs, thorough=False):
        """For each H x W x 3 uint8 RGB picture, its faces (records.Face:
        box, probabilities, keypoints), all classified in one batch.
        thorough: searched as a photo (BlazeFace's windows); off for video
        and camera frames, which get the detector's one fast pass."""
        return self.analyser.faces(rgbs, thorough=thorough)

    def read(self, image, bgr=None, thorough=True):
        """The faces in one picture: a path, a PIL image, the bytes of an
        encoded file (JPEG, PNG, ...), or a NumPy uint8 image, H x W grey or
        H x W x 3 colour (x 4 with alpha). A NumPy colour image is taken as
        BGR, as cv2.imread gives it (and as OpenCV-based libraries take it);
        pass bgr=False for RGB. Returns a list of face records, empty when no
        face is found. Photos are searched closely (BlazeFace's windows), as
        emotions.py searches them; thorough=False gives a camera frame's pass
        (one quick detector pass, the faces read in video_tta)."""
        name, rgb = as_rgb(image, bgr)
        found = self.analyser.faces([rgb], thorough, tta=None if thorough else self.video_tta)[0]
        return face_records(name, found, self.class_names)

    def read_video(self, path, every=1, smooth=DEFAULT_TIME_CONSTANT):
        """Yields, for every `every`th frame of a video, (frame index, time
        in seconds, [face records]); each record's `face` is its track
        number. smooth: the time constant in seconds of each track's
        smoothing (smoothing.Smoother), 0 for none; the records then keep
        the frame's own values as `raw_probabilities`. A face missed for one
        frame is carried at its last box (`carried`: true)."""
        for frame in self.frames(path, every, smooth):
            if frame.records is not None:
                yield frame.index, frame.seconds, frame.records

    def frames(self, path, every=1, smooth=DEFAULT_TIME_CONSTANT, decode_all=False):
        """The video loop, the one every door uses: yields a VideoFrame for
        every frame, the `every`th ones with their faces tracked
        (tracking.FaceTracks) and smoothed in time, the others with faces and
        records None, their pixels decoded only with decode_all (for an
        annotated copy). The faces are found by the full detector every
        detect_every analysed frames and followed in between
        (detectors.DetectEvery), and read with video_tta. Frames are
        analysed CHUNK at a time, and each is yielded once its chunk is."""
        import cv2

        from ferkit.vision.images import kind_of

        path = os.fspath(path)
        if every < 1:
            raise ValueError("every must be at least 1")
        if kind_of(path) == "image":
            raise DataError(path, "is a photo, not a video: read it with read()")
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            capture.release()
            raise DataError(path, "no such file" if not os.path.exists(path) else "cannot be opened as a video")
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        tracks = FaceTracks(smooth, max_gap=30 * every)
        detect = DetectEvery(self.analyser.detector, self.detect_every)
        frames = decoded_frames(capture, every, decode_all)
        index, done = 0, False
        try:
            while not done:
                batch = []  # (index, rgb or None, analysed?) of each frame read in this chunk.
                while sum(analysed for _, _, analysed in batch) < CHUNK:
                    item = next(frames, None)
                    if item is None:
                        done = True
                        break
                    batch.append(item)
                    index += 1
                found = iter(self.analyser.faces([rgb for _, rgb, analysed in batch if analysed], detect=detect,
                                                 tta=self.video_tta))
                for i, rgb, analysed in batch:
                    seconds = i / fps
                    if not analysed:
                        yield VideoFrame(i, round(seconds, 3), rgb, None, None)
                        continue
                    readings = tracks.update(i, seconds, next(found))
                    yield VideoFrame(i, round(seconds, 3), rgb, [r.face for r in readings],
                                     [video_record(path, i, seconds, r, self.class_names, smooth) for r in readings])
        finally:
            frames.close()  # Stops the decoding thread, then releases the capture.
        if index == 0:
            raise DataError(path, "no frames could be read (not a video, or a damaged one)")


def decoded_frames(capture, every, decode_all, ahead=2 * CHUNK):
    """(index, RGB frame or None, analysed?) for each frame of an open
    cv2.VideoCapture, decoded by a thread of its own up to `ahead` frames
    ahead of the caller, so decoding (OpenCV lets go of Python's lock)
    overlaps the models. Frames that are not analysed (index % every) are
    skipped undecoded unless decode_all. Closing the generator stops the
    thread and releases the capture."""
    import queue
    import threading

    import cv2

    ready, stop, end = queue.Queue(maxsize=ahead), threading.Event(), object()

    def decode():
        index = 0
        try:
            while not stop.is_set():
                analysed = index % every == 0
                if analysed or decode_all:
                    ok, bgr = capture.read()
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None
                else:
                    ok, rgb = capture.grab(), None  # Skipped frames are not decoded.
                if not ok:
                    break
                ready.put((index, rgb, analysed))
                index += 1
        finally:
            ready.put(end)

    thread = threading.Thread(target=decode, name="video-decoder", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not end:
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # Make room, so a decoder blocked on a full queue sees the stop.
            try:
                ready.get(timeout=0.05)
            except queue.Empty:
                pass
        capture.release()


def as_rgb(image, bgr=None):
    """(a name for the records, the picture as H x W x 3 uint8 RGB)."""
    from ferkit.vision.images import read_image, to_rgb8

    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        return path, read_image(path)
    if isinstance(image, (bytes, bytearray, memoryview)):  # An encoded file's contents, as an upload gives them.
        if not len(image):
            raise ValueError("an image given as bytes is an encoded file's contents; these bytes are empty")
        return None, read_image(io.BytesIO(bytes(image)), name="the image bytes")
    if hasattr(image, "convert") and hasattr(image, "size"):  # A PIL image: converted as read_image converts a file's.
        return None, to_rgb8(image)
    array = np.asarray(image)
    if array.dtype.kind in "SV":
        raise ValueError("a NumPy array of bytes is not an image; pass the encoded file's bytes themselves "
                         "(bytes), or a decoded uint8 image")
    if array.dtype != np.uint8:
        raise ValueError(f"a NumPy image must be uint8 (0-255), got {array.dtype}")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 1):
        array = np.repeat(array.reshape(array.shape[:2])[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"a NumPy image is H x W, H x W x 3 or H x W x 4, got shape {array.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"a NumPy image needs at least one pixel, got shape {array.shape}")
    colour = array[:, :, :3]
    if bgr is None or bgr:
        colour = colour[:, :, ::-1]
    return None, np.ascontiguousarray(colour)
