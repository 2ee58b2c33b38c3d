"""Faces in photos and videos: read, detect, crop as FER2013 did, track, annotate.

FER2013's faces were found by OpenCV's face detector and cropped to its box.
Run on FER2013's own training faces (`calibrate_crop`, printed by `bench.py
crop`: each 48x48 face padded with its edge pixels and enlarged 4x), OpenCV's frontal-face Haar cascade
finds a box centred on the crop whose side is the crop's divided by 1.027
(median of 465 faces found among 600; interquartile range 0.97-1.11). MTCNN's
box (the mtcnn package squares it) gives 1.021 (254 of 300). So a face here is
cropped as the square of CROP_SCALE[detector] times the box, centred on the
box, and resized to 48x48 by `face_pixels`, the same function every
other path into a model uses.

    rgb = read_image("photo.jpg")                  # EXIF-rotated, 8-bit RGB
    boxes = HaarDetector()(rgb)                    # [(x, y, w, h)] in its pixels
    faces = np.stack([crop_face(to_gray(rgb), box, CROP_SCALE["haar"]) for box in boxes])
"""
import os

import numpy as np

from fer2013 import CLASS_NAMES, IMAGE_SIZE, DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")
# Square crop side / detector box side that reproduces FER2013's framing,
# measured on FER2013 itself by calibrate_crop (see the module docstring).
CROP_SCALE = {"haar": 1.03, "mtcnn": 1.02}
DETECT_SIDE = 640  # Detection runs on a copy whose longer side is at most this.


def kind_of(path):
    ext = os.path.splitext(path)[1].lower()
    return "image" if ext in IMAGE_EXTENSIONS else "video" if ext in VIDEO_EXTENSIONS else None


class ImageTooLarge(DataError):
    """An image with more pixels than the caller allows (a decompression bomb)."""


def read_image(path, max_pixels=None, name=None):
    """A photo (a path or a file object) as (H, W, 3) uint8 RGB, upright as
    its EXIF orientation says. Grayscale, 16-bit, palette, RGBA/LA (composited
    on white) and CMYK files all come out the same way. Raises DataError
    naming the file (or `name`) otherwise, and ImageTooLarge, before decoding,
    for more than max_pixels pixels."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = name or path
    try:
        with Image.open(path) as image:
            if max_pixels and image.width * image.height > max_pixels:
                raise ImageTooLarge(name, f"{image.width} x {image.height} pixels is more than the "
                                          f"{max_pixels:,} allowed")
            image.load()  # Decode now: a truncated file fails here, not later.
            image = ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise DataError(path, "no such file") from None
    except IsADirectoryError:
        raise DataError(path, "is a folder, not an image") from None
    except UnidentifiedImageError:
        raise DataError(name, "not an image file (or a format Pillow cannot read)") from None
    except DataError:
        raise
    except Image.DecompressionBombError as e:  # Pillow's own limit, checked as it opens the file.
        raise ImageTooLarge(name, f"more pixels than allowed ({str(e).splitlines()[0][:120]})") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(name, f"cannot decode the image ({str(e).splitlines()[0][:120]})") from None
    return to_rgb8(image)


def to_rgb8(image):
    """A Pillow image of any mode -> (H, W, 3) uint8 RGB."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (or 32-bit) grayscale: scale the range to 8 bits, don't clip it.
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        gray = np.clip(array * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "F":
        array = np.asarray(image)
        gray = np.clip(array * (255.0 if array.max() <= 1 else 1.0), 0, 255)
        return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def to_gray(rgb):
    """ITU-R 601 luma (OpenCV's conversion), as FER2013's grayscale faces."""
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def downscale(image, side=DETECT_SIDE):
    """(copy, factor): the image shrunk so its longer side is at most `side`."""
    import cv2

    factor = min(1.0, side / max(image.shape[:2]))
    if factor == 1.0:
        return image, 1.0
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


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

    def __call__(self, rgb):
        """Boxes (x, y, w, h) in the image's pixels, left to right."""
        small, factor = downscale(to_gray(rgb), self.detect_side)
        min_side = max(20, round(min(small.shape) * 0.04))
        found = self.cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        return sorted(tuple(int(round(v / factor)) for v in box) for box in np.reshape(found, (-1, 4)))


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

    def __call__(self, rgb):
        small, factor = downscale(rgb, self.detect_side)
        found = self.mtcnn.detect_faces(small, box_format="xywh")
        return sorted(tuple(int(round(v / factor)) for v in face["box"])
                      for face in found if face["confidence"] >= self.min_confidence and min(face["box"][2:]) > 0)


DETECTORS = {"haar": HaarDetector, "mtcnn": MtcnnDetector}


def calibrate_crop(images, detector="haar", scale=4, pad=48):
    """Where the detector's box lies in FER2013's own 48x48 crops, the
    measurement CROP_SCALE comes from. Each face is padded (edge pixels
    repeated, so the detector sees a whole head) and enlarged `scale` times,
    then detected; for each face found: (crop side / box side, box centre -
    crop centre in x and in y, in box sides), as three arrays."""
    import cv2

    find = DETECTORS[detector](detect_side=10_000)
    ratios, dx, dy = [], [], []
    for face in images:
        big = cv2.copyMakeBorder(face[:, :, 0], pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        big = cv2.resize(big, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        boxes = find(np.repeat(big[..., None], 3, axis=2))
        if boxes:
            x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
            side = max(w, h) / scale
            ratios.append(IMAGE_SIZE / side)
            dx.append(((x + w / 2) / scale - pad - IMAGE_SIZE / 2) / side)
            dy.append(((y + h / 2) / scale - pad - IMAGE_SIZE / 2) / side)
    return np.array(ratios), np.array(dx), np.array(dy)


def face_pixels(gray):
    """A grayscale face crop of any size -> the (48, 48, 1) uint8 face every
    model takes: FER2013's own format, which the models scale to [0, 1]
    themselves. Photos and videos (faces.py) go through here; CSV faces are
    already in this format, and `fer2013.as_model_input` checks both on their way into
    a model, so training and serving share one preprocessing path. Shrinking
    averages pixels (area interpolation), as a downscaled face should."""
    import cv2

    gray = np.asarray(gray)
    if gray.ndim == 3 and gray.shape[-1] == 1:
        gray = gray[..., 0]
    if gray.ndim != 2 or gray.dtype != np.uint8 or min(gray.shape) < 1:
        raise ValueError(f"expected a 2-D uint8 grayscale crop, got {gray.dtype} {gray.shape}")
    shrink = min(gray.shape) >= IMAGE_SIZE
    face = cv2.resize(gray, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return face[..., None]


def crop_face(gray, box, scale):
    """The (48, 48, 1) uint8 face in `box` (x, y, w, h), framed as FER2013:
    a square of `scale` times the box side, centred on the box, with the
    image's edge pixels repeated where the square runs off the image."""
    import cv2

    x, y, w, h = box
    side = max(1, int(round(max(w, h) * scale)))
    left, top = int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2))
    pad = max(0, -left, -top, left + side - gray.shape[1], top + side - gray.shape[0])
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        left, top = left + pad, top + pad
    return face_pixels(gray[top : top + side, left : left + side])


class Tracker:
    """Gives each face in a video a track number: a box continues the track
    whose last box overlaps it most (intersection over union >= 0.3)."""

    def __init__(self, min_iou=0.3, max_gap=30):
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


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    union = aw * ah + bw * bh - w * h
    return w * h / union if union else 0.0


def annotate(rgb, faces):
    """A copy of the image with each face's box and "Emotion 87%" drawn on it.
    faces: [(box, emotion, probability)]. The label sits on a filled box in
    the face's colour with black or white text, readable on any background."""
    import cv2

    out = np.ascontiguousarray(rgb.copy())
    thickness = max(2, round(max(out.shape[:2]) / 400))
    font_scale = max(0.5, max(out.shape[:2]) / 1200)
    for (x, y, w, h), emotion, probability in faces:
        colour = COLOURS.get(emotion, (255, 255, 255))
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 0, 0), thickness + 2)  # Dark outline: visible on light images.
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness)
        text = f"{emotion} {probability:.0%}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = y - th - base - 2 * thickness if y - th - base - 2 * thickness >= 0 else y + h
        cv2.rectangle(out, (x - thickness // 2, top), (x + tw + 2 * thickness, top + th + base + 2 * thickness), colour, -1)
        ink = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
        cv2.putText(out, text, (x + thickness, top + th + thickness), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink,
                    max(1, thickness - 1), cv2.LINE_AA)
    return out


# One colour per emotion (RGB), the same in every annotated image and figure.
COLOURS = {
    "Angry": (230, 57, 70), "Disgust": (106, 153, 78), "Fear": (155, 93, 229), "Happy": (255, 209, 102),
    "Sad": (69, 123, 157), "Surprise": (255, 140, 66), "Neutral": (200, 200, 200),
    "Contempt": (141, 110, 99),
}


def record(path, box, probabilities, names=CLASS_NAMES, frame=None, seconds=None, face=None):
    """One face (or, with box None, a photo without one) as emotions.py's
    --json and serve.py's answers give it; names: the model's classes, in
    output order."""
    return {
        "file": path, "frame": frame, "time": None if seconds is None else round(seconds, 3), "face": face,
        "box": None if box is None else [int(v) for v in box],
        "probabilities": None if probabilities is None else
        {name: round(float(p), 5) for name, p in zip(names, probabilities)},
        "emotion": None if probabilities is None else names[int(np.argmax(probabilities))],
    }


class Analyser:
    """Detect, crop and classify: one detector and one predictor (see
    inference.Predictor) for every image, the same for emotions.py and
    serve.py, so photos, videos and the web page share one path."""

    def __init__(self, predictor, detector="haar", detect_size=DETECT_SIDE):
        self.detector = DETECTORS[detector](detect_size)
        self.scale = CROP_SCALE[detector]
        self.predict = predictor
        self.class_names = predictor.class_names

    def faces(self, rgbs):
        """For each image: [(box, probabilities)], all faces classified in one batch."""
        boxes = [self.detector(rgb) for rgb in rgbs]
        grays = [to_gray(rgb) if found else None for rgb, found in zip(rgbs, boxes)]
        crops = [crop_face(gray, box, self.scale) for gray, found in zip(grays, boxes) for box in found]
        probabilities = iter(self.predict(np.stack(crops)) if crops else [])
        return [[(box, next(probabilities)) for box in found] for found in boxes]
