"""images.py, detectors.py (Haar), crops.py, tracking.py and drawing.py: reading real-world photos,
detection, FER2013 framing, tracking, annotation. No model needed; BlazeFace
has its own tests (test_blazeface.py)."""
import io

import numpy as np
import pytest
from PIL import Image

from ferkit.vision import crops
from ferkit.vision import drawing
from ferkit.vision import tracking
from ferkit.vision import images
from ferkit.vision.detectors import HaarDetector
from ferkit.data import fer2013
from ferkit.data.fer2013 import DataError


@pytest.fixture(scope="module")
def hopper():
    from matplotlib import cbook

    return images.read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def haar_boxes(rgb):
    return [d.box for d in HaarDetector()(rgb)]


def save(tmp_path, name, image, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return str(path)


def test_modes_all_come_out_as_8_bit_rgb(tmp_path):
    gray = (np.arange(64 * 48) % 256).astype(np.uint8).reshape(48, 64)
    rgba = np.dstack([np.repeat(gray[..., None], 3, axis=2), np.full_like(gray, 255)])
    cases = {
        "gray.png": Image.fromarray(gray),
        "rgba.png": Image.fromarray(rgba, "RGBA"),
        "deep.png": Image.fromarray(gray.astype(np.uint16) * 257),  # 16-bit: 255 * 257 = 65535.
        "palette.png": Image.fromarray(gray).convert("P"),
        "photo.bmp": Image.fromarray(np.repeat(gray[..., None], 3, axis=2)),
        "photo.webp": Image.fromarray(np.repeat(gray[..., None], 3, axis=2)),
    }
    for name, image in cases.items():
        rgb = images.read_image(save(tmp_path, name, image, **({"lossless": True} if name.endswith("webp") else {})))
        assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8, name
        np.testing.assert_allclose(images.to_gray(rgb).astype(int), gray.astype(int), atol=2, err_msg=name)


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((10, 10, 4), np.uint8)  # Fully transparent black.
    assert (images.read_image(save(tmp_path, "clear.png", Image.fromarray(rgba, "RGBA"))) == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(np.zeros((20, 40, 3), np.uint8))  # Stored 40 wide, 20 high.
    exif = Image.Exif()
    exif[0x0112] = 6  # "Rotate 90 CW to display": a phone held upright.
    path = save(tmp_path, "phone.jpg", image, exif=exif.tobytes())
    assert images.read_image(path).shape[:2] == (40, 20)


@pytest.mark.parametrize("content, problem", [
    (None, "no such file"),
    (b"hello, this is text", "not an image file"),
    ("truncated", "cannot decode the image"),
])
def test_unreadable_files_raise_one_line_errors(tmp_path, content, problem):
    path = tmp_path / "bad.png"
    if content == "truncated":
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buffer, "PNG")
        content = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as error:
        images.read_image(str(path))
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_haar_finds_the_one_face_in_a_real_photo(hopper):
    boxes = haar_boxes(hopper)
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    assert 130 < x + w / 2 < 330 and 150 < y + h / 2 < 300 and 150 < w < 300  # Her face, not her badge.


def test_large_images_are_detected_on_a_smaller_copy_in_original_pixels(hopper):
    import cv2

    big = cv2.resize(hopper, None, fx=6, fy=6, interpolation=cv2.INTER_LINEAR)  # 3072 x 3600
    small_box, big_boxes = haar_boxes(hopper)[0], haar_boxes(big)
    assert len(big_boxes) == 1
    # Haar's box sizes come in steps of 10%, so compare centres and sizes to that.
    (x, y, w, h), (sx, sy, sw, sh) = big_boxes[0], np.array(small_box) * 6
    assert abs((x + w / 2) - (sx + sw / 2)) < 0.1 * sw and abs((y + h / 2) - (sy + sh / 2)) < 0.1 * sh
    assert 0.85 < w / sw < 1.15


def test_no_face_in_noise_or_blank_images():
    rng = np.random.default_rng(0)
    for image in (np.full((400, 600, 3), 128, np.uint8), rng.integers(0, 256, (400, 600, 3), dtype=np.uint8)):
        assert haar_boxes(image) == []


def test_crop_follows_fer2013_framing():
    gray = np.zeros((200, 200), np.uint8)
    gray[50:150, 50:150] = 255  # The "box" is the bright square.
    face = crops.crop_face(gray, (50, 50, 100, 100), scale=1.0)
    assert face.shape == (48, 48, 1) and face.dtype == np.uint8
    assert (face == 255).all()
    wider = crops.crop_face(gray, (50, 50, 100, 100), scale=2.0)[..., 0]
    assert wider[24, 24] == 255 and wider[2, 2] == 0  # The box fills the middle half.


def test_calibration_finds_the_framing_a_crop_was_made_with(hopper):
    """A real face cropped at 1.03 and at 1.4 times Haar's box: calibrate_crop
    reads each scale back (the measurement CROP_SCALE comes from)."""
    gray, box = images.to_gray(hopper), haar_boxes(hopper)[0]
    for scale in (1.03, 1.4):
        cut = np.stack([crops.crop_face(gray, (box[0] + d, box[1] + d, box[2], box[3]), scale) for d in (-3, 0, 3)])
        ratios, dx, dy = crops.calibrate_crop(cut, "haar")
        assert len(ratios) == 3
        assert abs(np.median(ratios) - scale) < 0.08 * scale, (scale, ratios)
        assert abs(np.median(dx)) < 0.08 and abs(np.median(dy)) < 0.08


def test_crop_off_the_edge_repeats_edge_pixels():
    gray = np.tile(np.arange(100, dtype=np.uint8), (100, 1))
    face = crops.crop_face(gray, (-20, 10, 60, 60), scale=1.0)[..., 0]
    assert face.shape == (48, 48) and face[:, 0].max() == 0  # Column 0 repeated leftwards.


def test_face_pixels_is_the_models_input_format():
    face = crops.face_pixels(np.full((300, 200), 7, np.uint8))
    assert face.shape == (48, 48, 1) and (face == 7).all()
    assert fer2013.as_model_input(np.stack([face, face])).shape == (2, 48, 48, 1)
    with pytest.raises(ValueError):
        fer2013.as_model_input(np.zeros((2, 48, 48, 1), np.float32))
    with pytest.raises(ValueError):
        crops.face_pixels(np.zeros((10, 10, 3), np.uint8))


def test_tracker_follows_moving_faces_and_starts_new_tracks():
    tracker = tracking.Tracker()
    assert tracker.assign(0, [(0, 0, 100, 100), (300, 0, 100, 100)]) == [0, 1]
    assert tracker.assign(1, [(310, 5, 100, 100), (10, 5, 100, 100)]) == [1, 0]
    assert tracker.assign(2, [(600, 300, 80, 80)]) == [2]


def test_annotation_draws_inside_a_copy(hopper):
    box = haar_boxes(hopper)[0]
    out = drawing.annotate(hopper, [(box, "Happy", 0.87)])
    assert out.shape == hopper.shape and not np.array_equal(out, hopper)
    x, y, w, h = box
    assert np.array_equal(out[y + h // 2, x + w // 2], hopper[y + h // 2, x + w // 2])  # The face itself stays visible.
    assert not np.shares_memory(out, hopper)
