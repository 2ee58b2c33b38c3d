"""The shifts a model meets outside FER2013, made from FER2013's own faces:
framing, a small face, blur, JPEG, contrast, lighting, noise, an occluded
eye band or mouth, a turned head; and the subtle faces, FER+'s PublicTest
faces whose expression some annotators took for Neutral.

Each shift maps a batch of (N, 48, 48, 1) uint8 faces to another of the same
shape; `bench.py shifts` scores models on PublicTest under each. Where a
shift moves the face (framing, a turn), the picture's edge pixels repeat,
as the crops of emotions.py do past a photo's edge. The eye and mouth bands
lie where FER2013's framing puts them (crops.ALIGN_OFFSET: the crop's
centre sits 0.286 face sizes below the eyes, a face size being 48 / 2.79
pixels): the eyes at rows 14-20, the mouth at rows 30-38.
"""
import numpy as np

from ferkit.data.fer2013 import IMAGE_SIZE

# Rows (top, bottom) of the eye and mouth bands in a 48x48 FER2013 face.
EYE_ROWS = (13, 22)
MOUTH_ROWS = (30, 39)
# A face is subtle when at least this many of its annotators called it
# Neutral though most named an expression (FER+ has ten annotators a face).
SUBTLE_NEUTRAL_VOTES = 2


def _each(images, change):
    """change applied to each (48, 48) face, back as (N, 48, 48, 1) uint8."""
    return np.stack([np.clip(change(face[:, :, 0]), 0, 255).astype(np.uint8) for face in images])[..., None]


def _warp(face, matrix):
    import cv2

    return cv2.warpAffine(face, matrix, (IMAGE_SIZE, IMAGE_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def reframe(images, scale=1.0, shift=(0.0, 0.0)):
    """The crop `scale` times as wide (below 1: tighter, the face larger;
    above 1: looser, more background), its centre moved by shift (x, y) in
    crop widths, resized back to 48x48."""
    import cv2

    c = (IMAGE_SIZE - 1) / 2
    # Output pixel p samples the source at scale * (p - c) + c + shift.
    matrix = np.array([[scale, 0, c - scale * c + shift[0] * IMAGE_SIZE],
                       [0, scale, c - scale * c + shift[1] * IMAGE_SIZE]], np.float64)
    return _each(images, lambda face: cv2.warpAffine(face, matrix, (IMAGE_SIZE, IMAGE_SIZE),
                                                     flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                                     borderMode=cv2.BORDER_REPLICATE))


def turn(images, degrees):
    """The face turned in the picture plane about its centre (positive:
    anticlockwise, as OpenCV counts)."""
    import cv2

    matrix = cv2.getRotationMatrix2D(((IMAGE_SIZE - 1) / 2, (IMAGE_SIZE - 1) / 2), degrees, 1.0)
    return _each(images, lambda face: _warp(face, matrix))


def small(images, side):
    """The face as a camera far away sees it: down to side x side pixels
    (averaging), then back up to 48x48 (bilinear), as face_pixels enlarges."""
    import cv2

    return _each(images, lambda face: cv2.resize(cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA),
                                                 (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_LINEAR))


def blur(images, sigma):
    """A Gaussian blur of sigma pixels (an out-of-focus or moving face)."""
    import cv2

    return _each(images, lambda face: cv2.GaussianBlur(face, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE))


def jpeg(images, quality):
    """Each face saved as a JPEG of this quality and read back."""
    import cv2

    def round_trip(face):
        ok, encoded = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)

    return _each(images, round_trip)


def contrast(images, factor):
    """Each face's contrast scaled by factor about its own mean grey."""
    return _each(images, lambda face: face.mean() + (face.astype(np.float32) - face.mean()) * factor)


def gamma(images, power):
    """grey = 255 (grey / 255) ** power: above 1 darkens the shadows (a dim
    room), below 1 lifts them (an overexposed one)."""
    return _each(images, lambda face: 255.0 * (face.astype(np.float32) / 255.0) ** power)


def noise(images, sigma, seed=0):
    """Gaussian grey noise of sigma grey levels (a dark, grainy camera),
    the same draw for the same seed."""
    rng = np.random.default_rng(seed)
    return np.clip(images.astype(np.float32) + rng.normal(0.0, sigma, images.shape), 0, 255).astype(np.uint8)


def band(images, rows, grey=0):
    """A band of full width over rows [top, bottom) filled with one grey: an
    occluded eye line (sunglasses) or mouth (a hand, a mask)."""
    out = images.copy()
    out[:, rows[0] : rows[1]] = grey
    return out


# name -> (what it does, the change); the order bench.py prints them in.
SHIFTS = {
    "tighter": ("crop 15% tighter", lambda x: reframe(x, scale=0.85)),
    "looser": ("crop 15% looser", lambda x: reframe(x, scale=1.15)),
    "shifted": ("crop shifted 10% right and down", lambda x: reframe(x, shift=(0.1, 0.1))),
    "small": ("face down to 24 px and back up", lambda x: small(x, 24)),
    "blur": ("Gaussian blur, sigma 1.5 px", lambda x: blur(x, 1.5)),
    "jpeg": ("JPEG quality 30", lambda x: jpeg(x, 30)),
    "contrast": ("contrast halved", lambda x: contrast(x, 0.5)),
    "dark": ("gamma 1.8 (dim light)", lambda x: gamma(x, 1.8)),
    "noise": ("grey noise, sigma 12", lambda x: noise(x, 12)),
    "eyes": ("a black band over the eyes", lambda x: band(x, EYE_ROWS)),
    "mouth": ("a black band over the mouth", lambda x: band(x, MOUTH_ROWS)),
    "turn": ("turned 15 degrees", lambda x: turn(x, 15)),
}


def subtle_faces(votes, majority, neutral_column=0, neutral_class=6, min_neutral=SUBTLE_NEUTRAL_VOTES):
    """(N,) bool: faces whose majority label is an expression (not Neutral)
    yet at least min_neutral annotators voted Neutral. votes: (N, 10) in
    FER+'s column order (Neutral first); majority: ferplus.majority_labels."""
    votes = np.asarray(votes)
    return (np.asarray(majority) >= 0) & (majority != neutral_class) & (votes[:, neutral_column] >= min_neutral)
