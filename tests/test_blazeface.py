"""BlazeFace on ONNX Runtime (blazeface.py, detectors.py) and aligned crops
(crops.align_face): the decoding, and the faces the Haar cascade misses."""
import cv2
import numpy as np
import pytest

from ferkit.vision import blazeface
from ferkit.vision import crops
from ferkit.vision import records
from ferkit.vision.detectors import BlazeFaceDetector, HaarDetector, Detection
from ferkit.vision.boxes import xywh_iou
from ferkit.vision.images import read_image, to_gray


@pytest.fixture(scope="module")
def hopper():
    from matplotlib import cbook

    return read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))  # 600 x 512, one face.


@pytest.fixture(scope="module")
def detector():
    return BlazeFaceDetector()


def turned(rgb, degrees):
    """The photo turned about its centre (counter-clockwise for positive degrees), edges repeated."""
    h, w = rgb.shape[:2]
    return cv2.warpAffine(rgb, cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0), (w, h),
                          borderMode=cv2.BORDER_REPLICATE)


def test_anchors_match_mediapipes_grids():
    full = blazeface.anchors(**{k: v for k, v in blazeface.MODELS["full"].items() if k != "file"})
    short = blazeface.anchors(**{k: v for k, v in blazeface.MODELS["short"].items() if k != "file"})
    assert full.shape == (2304, 2) and short.shape == (896, 2)  # The models' output rows.
    assert np.allclose(full[0], [0.5 / 48, 0.5 / 48]) and np.allclose(full[1], [1.5 / 48, 0.5 / 48])
    # Short range: 16x16 cells with two anchors each, then 8x8 cells with six.
    assert np.allclose(short[0], short[1]) and np.allclose(short[512], [1 / 16, 1 / 16])


def test_decode_places_boxes_and_keypoints_at_their_anchors():
    centres = np.array([[0.25, 0.5], [0.75, 0.5]], np.float32)
    regressors = np.zeros((1, 2, 16), np.float32)
    regressors[0, 1, :4] = [2, -1, 20, 10]  # Offset (2, -1), 20 x 10, in input pixels.
    regressors[0, 1, 4:6] = [-5, -3]  # The first keypoint.
    logits = np.array([[[-3.0], [3.0]]], np.float32)  # Only the second anchor scores above 0.5.
    boxes, keypoints, scores = blazeface.decode(regressors, logits, centres, size=100)
    assert boxes.tolist() == [[67.0, 44.0, 87.0, 54.0]]
    assert keypoints[0, 0].tolist() == [70.0, 47.0] and keypoints[0, 1].tolist() == [75.0, 50.0]
    assert scores[0] == pytest.approx(1 / (1 + np.exp(-3)))


def test_weighted_nms_merges_overlapping_boxes_by_score():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    keypoints = np.zeros((3, 6, 2), np.float32)
    merged = blazeface.weighted_nms(boxes, keypoints, np.array([0.9, 0.3, 0.8], np.float32))
    assert len(merged) == 2
    (box, _, score), (other, _, _) = merged
    assert score == pytest.approx(0.9) and box[0] == pytest.approx(0.3 / 1.2)  # (0 * 0.9 + 1 * 0.3) / 1.2
    assert other.tolist() == [50, 50, 60, 60]


def test_tiles_cover_the_image_with_half_overlap():
    windows = blazeface.tiles(1920, 1080, 480)
    assert all(0 <= x <= 1440 and 0 <= y <= 600 for x, y, _ in windows)
    assert {x for x, _, _ in windows} >= {0, 1440} and {y for _, y, _ in windows} >= {0, 600}
    xs = sorted({x for x, _, _ in windows})
    assert max(np.diff(xs)) <= 240  # Any face up to 240 pixels wide lies whole in one window.


def test_one_face_with_keypoints_in_a_real_photo(hopper, detector):
    found = detector(hopper)
    assert len(found) == 1
    (x, y, w, h), keypoints = found[0]
    assert 130 < x + w / 2 < 330 and 150 < y + h / 2 < 330 and 150 < w < 300
    right_eye, left_eye, nose, mouth = keypoints[:4]
    assert right_eye[0] < nose[0] < left_eye[0]  # Her right eye is on the image's left.
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]


def test_a_face_turned_30_degrees_is_found_where_haar_finds_none(hopper, detector):
    tilted = turned(hopper, 30)
    assert HaarDetector()(tilted) == []
    found = detector(tilted)
    assert len(found) == 1
    angle = np.degrees(crops.eye_angle(found[0].keypoints))
    assert -40 < angle < -20  # Turned counter-clockwise: the image-right eye is now higher.


def test_the_aligned_crop_of_a_turned_face_is_close_to_the_upright_one(hopper, detector):
    gray = to_gray(hopper)
    upright = crops.face_crop(gray, detector(hopper)[0], "blazeface").astype(float)
    tilted = turned(hopper, 30)
    found = detector(tilted)[0]
    aligned = crops.face_crop(to_gray(tilted), found, "blazeface").astype(float)
    unaligned = crops.face_crop(to_gray(tilted), found, "blazeface", align=False).astype(float)
    rms = lambda a, b: float(np.sqrt(np.mean((a - b) ** 2)))
    # Measured: 38.1 aligned against 64.6 for the same face cropped upright
    # from its box (grey levels 0-255; the crops of a textured face differ by
    # tens of levels for a shift of one pixel).
    assert rms(aligned, upright) < 45
    assert rms(unaligned, upright) > 1.5 * rms(aligned, upright)


def test_a_face_cut_by_the_frames_edge_is_found(hopper, detector):
    x, _, w, _ = detector(hopper)[0].box
    cut = np.ascontiguousarray(hopper[:, x + w // 4 :])  # The left quarter of her face is out of the frame.
    found = detector(cut)
    assert len(found) == 1 and found[0].box[0] <= 2


def small_face_photo(hopper, width=40):
    """A 1920x1080 photo with her head scaled so the face is about `width` pixels wide."""
    head = hopper[60:420, 90:430]  # 340 wide, the face about 200 of it.
    side = int(round(340 * width / 200))
    photo = np.full((1080, 1920, 3), 170, np.uint8)
    photo[600 : 600 + side, 1300 : 1300 + side] = cv2.resize(head, (side, side), interpolation=cv2.INTER_AREA)
    return photo


def test_a_40_pixel_face_in_a_1920x1080_photo_needs_the_windows(hopper, detector):
    photo = small_face_photo(hopper)
    assert detector(photo) == []  # One pass shrinks it to 4 pixels of the model's 192.
    found = detector(photo, thorough=True)
    assert len(found) == 1
    x, y, w, h = found[0].box
    assert 1290 < x < 1360 and 590 < y < 660 and 25 < w < 60


def test_several_faces_in_one_photo(hopper, detector):
    head = hopper[60:420, 90:430]
    group = np.full((500, 1300, 3), 230, np.uint8)
    for left in (20, 480, 940):
        group[70:430, left : left + 340] = head
    found = detector(group)
    assert len(found) == 3
    assert [d.box[0] // 400 for d in found] == [0, 1, 2]  # Left to right, one in each third.


def test_no_face_in_noise_or_flat_images(detector):
    rng = np.random.default_rng(0)
    for image in (np.full((400, 600, 3), 128, np.uint8), rng.integers(0, 256, (400, 600, 3), dtype=np.uint8),
                  np.zeros((1, 1, 3), np.uint8)):
        assert detector(image, thorough=True) == []


def test_align_face_levels_the_eyes_and_frames_from_them():
    """Two bright dots for eyes on a tilted line, a third for the mouth: the
    aligned crop has the eyes on one row, the mouth below their midpoint."""
    gray = np.zeros((300, 300), np.uint8)
    angle = np.radians(25)
    across, down = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    centre = np.array([150.0, 130.0])
    points = [centre - 30 * across, centre + 30 * across, centre + 60 * down]
    for x, y in points:
        cv2.circle(gray, (int(round(x)), int(round(y))), 4, 255, -1)
    keypoints = np.array(points[:2] + [centre + 30 * down, points[2]] + [[0.0, 0.0]] * 2)
    crop = crops.align_face(gray, keypoints)[..., 0]
    blobs = cv2.connectedComponentsWithStats((crop > 60).astype(np.uint8))[3][1:]
    assert len(blobs) == 3
    eyes, mouth = sorted(blobs, key=lambda p: p[1])[:2], sorted(blobs, key=lambda p: p[1])[2]
    assert abs(eyes[0][1] - eyes[1][1]) < 1.0  # Level.
    assert abs(mouth[0] - (eyes[0][0] + eyes[1][0]) / 2) < 1.0 and mouth[1] > eyes[0][1] + 5


def test_records_carry_the_keypoints():
    record = records.record("a.jpg", (1, 2, 3, 4), np.full(8, 1 / 8), records.CLASS_NAMES + ("Contempt",),
                          keypoints=np.arange(12, dtype=float).reshape(6, 2))
    assert record["keypoints"]["right_eye"] == [0.0, 1.0] and record["keypoints"]["left_ear"] == [10.0, 11.0]
    assert records.record("a.jpg", None, None)["keypoints"] is None


def test_each_detector_gives_integer_boxes_on_the_face_and_keypoints_where_it_has_them(hopper, detector):
    """What every caller relies on: (x, y, w, h) in the photo's integer pixels,
    around the face, with BlazeFace's six keypoints inside the box and the
    Haar cascade's None."""
    for found, has_points in ((detector(hopper), True), (HaarDetector()(hopper), False)):
        (d,) = found
        assert isinstance(d, Detection) and all(isinstance(v, int) for v in d.box)
        x, y, w, h = d.box
        assert 120 < x + w / 2 < 400 and 120 < y + h / 2 < 330 and 120 < w < 320  # Her face, not the photo.
        if has_points:
            assert d.keypoints.shape == (6, 2)
            assert ((d.keypoints[:4] >= [x, y]) & (d.keypoints[:4] <= [x + w, y + h])).all()
        else:
            assert d.keypoints is None


def test_a_window_that_sees_part_of_a_big_face_adds_no_face(hopper, detector):
    big = cv2.resize(hopper, None, fx=7, fy=7, interpolation=cv2.INTER_LINEAR)  # 3584 x 4200: the face 1,500 wide.
    found = detector(big, thorough=True)
    assert len(found) == 1
    (x, y, w, h), _ = found[0]
    (sx, sy, sw, sh), _ = detector(hopper)[0]
    assert abs(x + w / 2 - 7 * (sx + sw / 2)) < 0.1 * 7 * sw and 0.85 < w / (7 * sw) < 1.15


@pytest.mark.parametrize("side", [48, 96, 256])
def test_a_face_that_fills_the_picture_is_found_by_the_close_up_pass(hopper, side):
    """The photo cropped to the detector's own box: the full-range model
    alone finds nothing; the close-up pass (short range, zoomed out) finds
    the face, its box nearly the whole picture, its eyes in the upper half."""
    (x, y, w, h), _, _ = blazeface.BlazeFace()(hopper)[0]
    crop = cv2.resize(hopper[y : y + h, x : x + w], (side, side), interpolation=cv2.INTER_AREA)
    assert blazeface.BlazeFace(close_up=False)(crop) == []
    (found, points, _), = blazeface.BlazeFace()(crop)
    assert found[2] > 0.8 * side and found[3] > 0.8 * side
    assert (points[:2, 1] < side / 2).all() and points[0, 0] < points[1, 0]  # Eyes up, in image order.


def test_the_close_up_pass_runs_only_where_one_pass_finds_nothing(hopper, monkeypatch):
    detector = blazeface.BlazeFace()
    calls = []
    monkeypatch.setattr(detector.close_up, "candidates", lambda *a, **k: calls.append(k) or
                        (np.zeros((0, 4)), np.zeros((0, 6, 2)), np.zeros(0)))
    assert len(detector(hopper)) == 1 and calls == []
    assert detector(np.full((200, 200, 3), 128, np.uint8)) == [] and calls == [{"zoom_out": 2.0}]


def hopper_frame(hopper, x=200):
    """A 1280x720 video frame with the photo's face in it."""
    frame = np.full((720, 1280, 3), 180, np.uint8)
    frame[100:604, x : x + 430] = cv2.resize(hopper, (430, 504))
    return frame


def test_a_frames_quick_shrink_is_the_one_step_shrink_and_finds_the_same_box(hopper, detector):
    frame = hopper_frame(hopper)
    exact, scale, pad_x, pad_y = blazeface.letterbox(frame, 192)
    fast, *placement = blazeface.letterbox(frame, 192, fast=True)
    assert placement == [scale, pad_x, pad_y]
    assert 0 < np.abs(exact - fast).mean() < 0.5 / 127.5  # Under half a grey level on average, in [-1, 1].
    (photo_box, _, _), = detector.model(frame)
    (frame_box, _, _), = detector.model(frame, fast=True)
    assert np.abs(np.subtract(photo_box, frame_box)).max() <= 0.02 * photo_box[2]  # Within 2% of the face's side.
    odd = frame[:719, :1279]  # Sides no block divides: halved by a Gaussian pyramid instead.
    (odd_box, _, _), = detector.model(odd, fast=True)
    assert np.abs(np.subtract(photo_box, odd_box)).max() <= 0.03 * photo_box[2]  # 4 px of 169, measured
    small = frame[:100, :150]  # Under twice the model's side: the one step, as for a photo.
    assert np.array_equal(blazeface.letterbox(small, 128)[0], blazeface.letterbox(small, 128, fast=True)[0])


def test_refit_finds_the_face_again_near_its_box_and_nothing_where_there_is_none(hopper, detector):
    frame = hopper_frame(hopper)
    (box, _, _), = detector.model(frame)
    moved = hopper_frame(hopper, x=212)  # The face 12 px to the right in the next frame.
    found, points, score = detector.model.refit(moved, box)
    assert xywh_iou(found, (box[0] + 12, *box[1:])) > 0.75 and score > 0.5
    assert box[0] + 12 < points[0][0] < box[0] + 12 + box[2]  # The right eye inside the moved box.
    assert detector.model.refit(frame, (900, 100, 169, 169)) is None  # Grey wall: no face near that box.
    assert detector.model.refit(frame, (1279, 719, 4, 4)) is None  # A window too small to search.


class CountingDetector:
    """A detector whose face is there or not frame by frame, and whose
    follow() loses it where told: what DetectEvery decides is countable."""

    def __init__(self, present, lost=()):
        self.present, self.lost, self.frame, self.calls = present, set(lost), 0, []

    def __call__(self, rgb, thorough=False):
        self.calls.append(("full", int(rgb)))
        return [Detection((int(rgb), 0, 10, 10), None)] if self.present[int(rgb)] else []

    def start_following(self, rgb, detections):
        return detections

    def follow(self, rgb, state):
        self.calls.append(("follow", int(rgb)))
        return None if int(rgb) in self.lost else ([Detection((int(rgb), 0, 10, 10), None)], state)


def test_detect_every_k_frames_follows_between_and_detects_again_when_lost():
    from ferkit.vision.detectors import DetectEvery

    fake = CountingDetector([True] * 12, lost=[7])
    detect = DetectEvery(fake, every=5)
    found = [detect(np.int64(i)) for i in range(12)]
    assert all(len(f) == 1 for f in found)
    full = [i for kind, i in fake.calls if kind == "full"]
    # Frames 0 and 5 by the schedule; 7 because following lost the face there; then 12 would be next.
    assert full == [0, 5, 7] and (detect.full_passes, detect.followed) == (3, 9)
    # After a frame with no face there is nothing to follow: the next frame gets the full pass.
    fake = CountingDetector([False, False, True, True, True])
    detect = DetectEvery(fake, every=5)
    assert [len(detect(np.int64(i))) for i in range(5)] == [0, 0, 1, 1, 1]
    assert [i for kind, i in fake.calls if kind == "full"] == [0, 1, 2]
    with pytest.raises(ValueError, match="at least 1"):
        DetectEvery(fake, every=0)


def test_a_detector_that_cannot_follow_runs_on_every_frame(hopper):
    from ferkit.vision.detectors import DetectEvery

    detect = DetectEvery(HaarDetector(), every=5)
    for _ in range(3):
        assert len(detect(hopper)) == 1
    assert (detect.full_passes, detect.followed) == (3, 0)


def test_a_followed_face_leaving_the_frame_keeps_its_box_inside_it(hopper, detector):
    from ferkit.vision.detectors import DetectEvery

    face = cv2.resize(hopper, (430, 504))
    detect = DetectEvery(detector, every=5)
    for i in range(5):  # The face walks off the left edge, 45 px a frame (25 px never takes a box out).
        frame = np.full((720, 1280, 3), 180, np.uint8)
        left = 40 - 45 * i
        frame[100:604, max(0, left) : left + 430] = face[:, max(0, -left) :]
        for found in detect(frame):
            x, y, w, h = found.box
            assert x >= 0 and y >= 0 and x + w <= 1280 and y + h <= 720 and w > 0 and h > 0
    assert detect.followed >= 1  # Some of those frames were followed, not detected.
