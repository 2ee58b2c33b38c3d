"""Faces cut as FER2013's were: the square around a detector's box, or one
framed from BlazeFace's keypoints and turned so the eyes are level, resized
to the 48x48 grey face every model takes; and the measurements on FER2013's
own faces that the framing comes from.

FER2013's faces were found by OpenCV's face detector and cropped to its box.
Run on FER2013's own training faces (`calibrate_crop`, printed by `bench.py
crop`: each 48x48 face padded with its edge pixels and enlarged 4x), each
detector's box is measured against the crop: OpenCV's Haar cascade gives a
box centred on the crop whose side is the crop's divided by 1.027 (median of
465 faces found among 600; interquartile range 0.97-1.11); MTCNN's 1.021 (254
of 300); BlazeFace's (full range) 1.164 (488 of 600; interquartile range
1.08-1.31), its centre 0.043 box sides below the crop's, so that crop also
moves up by the measured offset (CROP_OFFSET). A face is cut as the square of
CROP_SCALE[detector] times the box, centred on the box less the offset, and
resized to 48x48 by `face_pixels`, the function every other path into a
model uses. With BlazeFace's keypoints the square is also turned so that the
eyes are level (`align_face`): a tilted head reaches the model upright.

    rgb = read_image("photo.jpg")                  # EXIF-rotated, 8-bit RGB
    found = BlazeFaceDetector()(rgb)               # [Detection(box, keypoints)]
    faces = np.stack([face_crop(to_gray(rgb), d, "blazeface") for d in found])
"""
import numpy as np

from ferkit.vision.detectors import DETECTORS
from ferkit.data.fer2013 import IMAGE_SIZE

# Square crop side / detector box side, and the crop centre's offset from the
# box centre (in box sides, x then y, in the face's own upright frame), that
# reproduce FER2013's framing, measured on FER2013 by calibrate_crop.
CROP_SCALE = {"haar": 1.03, "mtcnn": 1.02, "blazeface": 1.16}
CROP_OFFSET = {"haar": (0.0, 0.0), "mtcnn": (0.0, 0.0), "blazeface": (0.0, 0.043)}

# Crop side / face_size and the crop centre's offset from the eyes' centre
# (face_size units, the face's frame), measured by calibrate_alignment.
# On 600 FER2013 training faces (bench.py crop --detector blazeface, 488
# found): 2.793 (interquartile 2.59-3.13), offset x +0.005 (taken as 0, a
# face being symmetric), y +0.286.
ALIGN_SCALE = 2.79
ALIGN_OFFSET = (0.0, 0.286)

def detections_on_enlarged(images, detector, scale, pad):
    """For each 48x48 face: the detector's [Detection] on it padded with its
    edge pixels (so the detector sees a whole head) and enlarged `scale`
    times, in the enlarged image's pixels."""
    import cv2

    find = DETECTORS[detector](detect_side=10_000)
    for face in images:
        big = cv2.copyMakeBorder(face[:, :, 0], pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        big = cv2.resize(big, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        yield find(np.repeat(big[..., None], 3, axis=2))


def calibrate_crop(images, detector="haar", scale=4, pad=48):
    """Where the detector's box lies in FER2013's own 48x48 crops, the
    measurement CROP_SCALE comes from. Each face is padded (edge pixels
    repeated, so the detector sees a whole head) and enlarged `scale` times,
    then detected; for each face found: (crop side / box side, box centre -
    crop centre in x and in y, in box sides), as three arrays."""
    ratios, dx, dy = [], [], []
    for found in detections_on_enlarged(images, detector, scale, pad):
        boxes = [d.box for d in found]
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
    themselves. Photos and videos (faces.Analyser) go through here; CSV faces are
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


def crop_face(gray, box, scale, offset=(0.0, 0.0)):
    """The (48, 48, 1) uint8 face in `box` (x, y, w, h), framed as FER2013:
    a square of `scale` times the box side, centred on the box less
    `offset` box sides, with the image's edge pixels repeated where the
    square runs off the image."""
    import cv2

    x, y, w, h = box
    side = max(1, int(round(max(w, h) * scale)))
    cx, cy = x + w / 2 - offset[0] * max(w, h), y + h / 2 - offset[1] * max(w, h)
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    pad = max(0, -left, -top, left + side - gray.shape[1], top + side - gray.shape[0])
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        left, top = left + pad, top + pad
    return face_pixels(gray[top : top + side, left : left + side])


def eye_angle(keypoints):
    """The angle (radians) of the line from the image-left eye to the
    image-right eye: 0 for a level face, negative when the image-right eye
    is higher."""
    (x0, y0), (x1, y1) = keypoints[0], keypoints[1]
    return float(np.arctan2(y1 - y0, x1 - x0))


def face_size(keypoints):
    """A length that turning the head in the image plane leaves alone (a
    box's side does not: BlazeFace's shrinks by 11% at 30 degrees): the mean
    of the eye distance and the eye-centre-to-mouth distance."""
    eyes = (keypoints[0] + keypoints[1]) / 2
    return float((np.linalg.norm(keypoints[1] - keypoints[0]) + np.linalg.norm(keypoints[3] - eyes)) / 2)


def calibrate_alignment(images, scale=4, pad=48):
    """Where BlazeFace's keypoints lie in FER2013's own 48x48 crops, the
    measurement ALIGN_SCALE and ALIGN_OFFSET come from (as calibrate_crop for
    boxes): per face found, crop side / face_size, and the crop centre's
    offset from the eyes' centre in face_size units, in the face's own frame."""
    ratios, dx, dy = [], [], []
    for found in detections_on_enlarged(images, "blazeface", scale, pad):
        if not found:
            continue
        keypoints = max(found, key=lambda d: d.box[2] * d.box[3]).keypoints / scale - pad
        size, angle = face_size(keypoints), eye_angle(keypoints)
        c, s = np.cos(angle), np.sin(angle)
        offset = (np.array([IMAGE_SIZE / 2, IMAGE_SIZE / 2]) - (keypoints[0] + keypoints[1]) / 2) / size
        ratios.append(IMAGE_SIZE / size)
        dx.append(c * offset[0] + s * offset[1])
        dy.append(-s * offset[0] + c * offset[1])
    return np.array(ratios), np.array(dx), np.array(dy)


def align_face(gray, keypoints):
    """The (48, 48, 1) face framed from its keypoints as FER2013's faces are
    framed (ALIGN_SCALE and ALIGN_OFFSET, measured by calibrate_alignment),
    and turned about the eyes so that they are level. Edge pixels repeat
    past the image's edge."""
    import cv2

    keypoints = np.asarray(keypoints, np.float64)
    size = face_size(keypoints)
    angle = eye_angle(keypoints)
    # The offset is measured in the face's frame, so it turns with the face.
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = ALIGN_OFFSET
    eyes = (keypoints[0] + keypoints[1]) / 2
    cx, cy = eyes + size * np.array([c * dx - s * dy, s * dx + c * dy])
    side = max(1, int(round(size * ALIGN_SCALE)))
    # Output pixel (u, v) samples the source at centre + R(angle) (u - side/2, v - side/2).
    to_source = np.array([[c, -s, cx - c * side / 2 + s * side / 2],
                          [s, c, cy - s * side / 2 - c * side / 2]], np.float64)
    crop = cv2.warpAffine(gray, to_source, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    return face_pixels(crop)


def face_crop(gray, detection, detector, align=True):
    """The model's input for one detection: framed from the keypoints and
    turned upright where the detector gives keypoints, else from the box."""
    if align and detection.keypoints is not None:
        return align_face(gray, detection.keypoints)
    return crop_face(gray, detection.box, CROP_SCALE[detector], CROP_OFFSET[detector])
