"""The numbers the page's JavaScript shares with Python, from their one
Python source: BlazeFace's models, anchors and thresholds (blazeface.py,
detectors.py), the crop (crops.py), the smoothing time constant
(smoothing.py), the tracker's overlap (tracking.py), the colours and the
label's ink rule (drawing.py). serve.py sends them in /api/health; the page
reads them before it draws or detects anything."""
from ferkit.vision import blazeface, crops, detectors, drawing, smoothing, tracking
from ferkit.data.fer2013 import IMAGE_SIZE


def detector_spec(name):
    spec = blazeface.MODELS[name]
    return {"url": f"/models/{spec['file']}", "size": spec["size"], "strides": list(spec["strides"]),
            "twoPerCell": spec["two_per_cell"]}


def page_constants():
    """A JSON-ready dict; names in the page's camelCase."""
    return {
        "detector": {
            "full": detector_spec("full"),
            "closeUp": {**detector_spec(blazeface.CLOSE_UP_MODEL), "zoomOut": blazeface.CLOSE_UP_ZOOM_OUT},
            "minScore": blazeface.MIN_SCORE, "nmsIou": blazeface.NMS_IOU, "rawScoreLimit": blazeface.RAW_SCORE_LIMIT,
            "tileSide": detectors.TILE_SIDE, "photoMaxSide": blazeface.PHOTO_MAX_SIDE,
        },
        "follow": {"detectEvery": detectors.DETECT_EVERY, "refitWindow": blazeface.REFIT_WINDOW,
                   "refitIou": blazeface.REFIT_IOU, "videoTta": smoothing.VIDEO_TTA},
        "crop": {"alignScale": crops.ALIGN_SCALE, "alignOffset": list(crops.ALIGN_OFFSET), "face": IMAGE_SIZE,
                 "keypoints": list(blazeface.KEYPOINTS)},
        "smoothing": {"timeConstantMs": smoothing.DEFAULT_TIME_CONSTANT * 1000, "forgetAfter": smoothing.FORGET_AFTER},
        "tracking": {"minIou": tracking.TRACK_IOU},
        "ink": {"darkAbove": drawing.DARK_INK_ABOVE},
        "colours": {name: list(rgb) for name, rgb in drawing.COLOURS.items()},
    }
