"""Box overlap, once for every caller: BlazeFace's non-maximum suppression
(corner boxes), the video tracker and the benchmarks ([x, y, w, h] boxes);
static/geometry.js computes the same for the page."""
import numpy as np


def iou(box, boxes):
    """Intersection over union of one (x0, y0, x1, y1) box with each of
    (M, 4) boxes; 0 where the union is empty."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def corners(box):
    """[x, y, w, h] -> (x0, y0, x1, y1)."""
    x, y, w, h = box
    return (x, y, x + w, y + h)


def xywh_iou(a, b):
    """Intersection over union of two [x, y, w, h] boxes."""
    return float(iou(corners(a), [corners(b)])[0])
