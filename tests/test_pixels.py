"""static/pixels.js, run by Node, against cv2 pixel for pixel: the page's
in-browser faces are ferkit's only if every resampling step is OpenCV's."""
import base64
import json
import os
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from conftest import ROOT

RUNNER = """
import * as pixels from "%s";
let text = "";
for await (const chunk of process.stdin) text += chunk;
const results = JSON.parse(text).map(({ op, args, image }) => {
  const src = new Uint8Array(Buffer.from(image, "base64"));
  const out = op === "rint" ? Float64Array.from(args[0], pixels.rint) : pixels[op](src, ...args);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength).toString("base64");
});
process.stdout.write(JSON.stringify(results));
"""


def run_pixels(cases):
    """[(op, image, args)] -> pixels.js's output for each, as bytes."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed here")
    payload = [{"op": op, "args": args, "image": base64.b64encode(np.ascontiguousarray(image).tobytes()).decode()}
               for op, image, args in cases]
    module = "file://" + os.path.join(ROOT, "static", "pixels.js")
    result = subprocess.run([node, "--input-type=module", "-e", RUNNER % module], input=json.dumps(payload),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return [base64.b64decode(out) for out in json.loads(result.stdout)]


def smooth_image(rng, height, width, channels):
    """Noise blurred a little, so that neighbouring pixels are close, as in a photo."""
    shape = (height, width) if channels == 1 else (height, width, channels)
    noise = rng.integers(0, 256, size=shape, dtype=np.uint8)
    return cv2.GaussianBlur(noise, (3, 3), 1.0) if min(height, width) >= 3 else noise


def test_rounding_is_half_to_even():
    values = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001, 1e6 + 0.5, 3.0]
    got = np.frombuffer(run_pixels([("rint", np.zeros(1, np.uint8), [values])])[0], np.float64)
    np.testing.assert_array_equal(got, np.rint(values))


def test_gray_resize_and_warp_equal_opencv():
    rng = np.random.default_rng(0)
    cases, expected = [], []

    def case(op, image, args, reference):
        cases.append((op, image, args))
        expected.append(reference)

    for height, width in [(1, 1), (37, 53), (480, 640)]:
        rgba = rng.integers(0, 256, size=(height, width, 4), dtype=np.uint8)
        case("toGray", rgba, [width, height, 4], cv2.cvtColor(rgba[..., :3], cv2.COLOR_RGB2GRAY))
    # Shrinking by area: the letterbox (RGBA, 4 channels), face crops to 48x48
    # (odd sizes, exact multiples, 2x2's own rounding), and thin images.
    for (sh, sw), (dh, dw), channels in [((480, 640), (144, 192), 4), ((600, 512), (192, 164), 4),
                                         ((131, 131), (48, 48), 1), ((96, 96), (48, 48), 1),
                                         ((144, 144), (48, 48), 1), ((49, 49), (48, 48), 1),
                                         ((48, 48), (48, 48), 1), ((300, 7), (20, 1), 1), ((3, 200), (1, 192), 4)]:
        image = smooth_image(rng, sh, sw, channels)
        case("resizeArea", image, [sw, sh, channels, dw, dh], cv2.resize(image, (dw, dh), interpolation=cv2.INTER_AREA))
    # Growing: a small photo into the letterbox, a small face up to 48x48.
    for (sh, sw), (dh, dw), channels in [((120, 160), (144, 192), 4), ((17, 17), (48, 48), 1),
                                         ((1, 1), (48, 48), 1), ((33, 41), (48, 48), 1), ((20, 30), (37, 100), 4)]:
        image = smooth_image(rng, sh, sw, channels)
        case("resizeLinear", image, [sw, sh, channels, dw, dh],
             cv2.resize(image, (dw, dh), interpolation=cv2.INTER_LINEAR))
    # Turned crops, some running off the image (edge pixels repeat there).
    gray = smooth_image(rng, 200, 220, 1)
    for angle, cx, cy, side in [(0.0, 110, 100, 96), (0.4, 60, 150, 113), (-0.6, 20, 15, 81), (0.1, 210, 190, 150),
                                (1.2, 100, 100, 31)]:
        c, s = np.cos(angle), np.sin(angle)
        m = np.array([[c, -s, cx - c * side / 2 + s * side / 2], [s, c, cy - s * side / 2 - c * side / 2]])
        case("warpAffine", gray, [220, 200, m.tolist(), side, side],
             cv2.warpAffine(gray, m, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE))
    for (op, _, args), got, want in zip(cases, run_pixels(cases), expected):
        got = np.frombuffer(got, np.uint8)
        assert got.size == want.size, (op, args[:5])
        mismatched = int((got != want.reshape(-1)).sum())
        assert mismatched == 0, f"{op} {args[:5]}: {mismatched} of {want.size} values differ from OpenCV's"


def test_a_tie_rounds_to_even_as_opencv_does():
    """A 2x1 block of 10 and 11 averages to 10.5: OpenCV gives 10 (its 2x2
    blocks alone round halves up), where Math.round would give 11."""
    image = np.array([[10, 11]], np.uint8).repeat(3, axis=0)
    wanted = cv2.resize(image, (1, 3), interpolation=cv2.INTER_AREA).reshape(-1)
    got = np.frombuffer(run_pixels([("resizeArea", image, [2, 3, 1, 1, 3])])[0], np.uint8)
    assert wanted.tolist() == got.tolist() == [10, 10, 10]
    block = np.array([[10, 11], [10, 11]], np.uint8)
    assert cv2.resize(block, (1, 1), interpolation=cv2.INTER_AREA)[0, 0] == 11
    assert np.frombuffer(run_pixels([("resizeArea", block, [2, 2, 1, 1, 1])])[0], np.uint8).tolist() == [11]
