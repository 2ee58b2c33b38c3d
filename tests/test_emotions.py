"""emotions.py end to end with the released model: a real photo, generated
photos (several faces, none, RGBA, 16-bit, EXIF-rotated, very large), a video
written here with OpenCV, a folder with stray files; both output formats;
bad input."""
import csv
import json
import os

import cv2
import numpy as np
import pytest
from conftest import assert_one_line_error, run_main
from PIL import Image

from ferkit.programs import cli
from ferkit.infer.inference import OnnxModel

# The model emotions.py runs by default (its released ONNX copy): the tests
# skip where it is not there, and read its classes only where it is.
EMOTIONS_MODEL = cli.released_model(cli.EMOTIONS_MODEL, prefer_onnx=True)
pytestmark = pytest.mark.skipif(not os.path.isfile(EMOTIONS_MODEL), reason=f"{EMOTIONS_MODEL} is not in this checkout")
CLASS_NAMES = OnnxModel(EMOTIONS_MODEL).class_names if os.path.isfile(EMOTIONS_MODEL) else ()
FIELDS = {"file", "frame", "time", "face", "box", "keypoints", "probabilities", "emotion"}


def hopper_rgb():
    from matplotlib import cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        return np.asarray(image.convert("RGB"))  # 600 high, 512 wide.


def truncated_png(path):
    Image.fromarray(hopper_rgb()).save(path, "PNG")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 3])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A folder of photos and a video, as a user's folder might hold them."""
    folder = tmp_path_factory.mktemp("photos")
    rgb = hopper_rgb()
    Image.fromarray(rgb).save(folder / "hopper.jpg", quality=92)
    face = rgb[80:360, 130:400]  # Her head, 270 x 280.
    group = np.full((500, 1200, 3), 235, np.uint8)
    for x in (40, 460, 880):
        group[110:390, x : x + 270] = face
    Image.fromarray(group).save(folder / "group.png")
    ramp = np.linspace(0, 255, 640 * 480).reshape(480, 640).astype(np.uint8)
    Image.fromarray(ramp).save(folder / "no_face.png")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:, :40, 3] = 0
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    gray16 = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    cv2.imwrite(str(folder / "deep.png"), gray16)
    cv2.imwrite(str(folder / "gray.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))  # deep.png's pixels in 8 bits.
    white_strip = rgb.copy()
    white_strip[:, :40] = 255
    Image.fromarray(white_strip).save(folder / "strip.png")  # rgba.png's pixels once composited on white.
    exif = Image.Exif()
    exif[0x0112] = 6  # Stored sideways; "rotate 90 degrees clockwise to display".
    Image.fromarray(rgb).rotate(90, expand=True).save(folder / "phone.jpg", exif=exif.tobytes(), quality=92)
    big = cv2.resize(rgb, None, fx=7, fy=7, interpolation=cv2.INTER_LINEAR)  # 3584 x 4200, 15 megapixels.
    Image.fromarray(big).save(folder / "large.jpg", quality=85)
    (folder / "notes.txt").write_text("not a photo\n")
    truncated_png(folder / "broken.png")
    writer = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    for i in range(12):
        frame = np.full((480, 640, 3), 200, np.uint8)
        frame[100:380, 60 + 10 * i : 330 + 10 * i] = face[..., ::-1]
        writer.write(frame)
    writer.release()
    return folder


@pytest.fixture(scope="module")
def analysed(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    result = run_main("emotions.py", str(inputs), "--json", str(out / "faces.json"), "--csv", str(out / "faces.csv"),
                        "--out-dir", str(out / "annotated"))
    assert result.returncode == 0, result.stderr[-3000:]
    records = json.loads((out / "faces.json").read_text())
    by_file = {}
    for r in records:
        by_file.setdefault(os.path.basename(r["file"]), []).append(r)
    return result, records, by_file, out


def test_every_record_has_the_schema(analysed):
    _, records, _, _ = analysed
    for r in records:
        # A video's faces keep the frame's own probabilities beside the smoothed ones (carried: a missed frame).
        video = {"raw_probabilities"} | ({"carried"} if r.get("carried") else set()) if r["frame"] is not None else set()
        assert set(r) == FIELDS | video
        if r["box"] is not None:
            assert set(r["probabilities"]) == set(CLASS_NAMES)
            assert abs(sum(r["probabilities"].values()) - 1) < 1e-3
            assert r["emotion"] == max(r["probabilities"], key=r["probabilities"].get)
            assert len(r["box"]) == 4 and all(isinstance(v, int) for v in r["box"])
            # BlazeFace (the default detector) gives six keypoints, the eyes inside the box.
            assert list(r["keypoints"]) == ["right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear"]
            x, y, w, h = r["box"]
            for ex, ey in (r["keypoints"]["right_eye"], r["keypoints"]["left_eye"]):
                assert x <= ex <= x + w and y <= ey <= y + h


def test_photos_get_their_faces(analysed):
    _, _, by_file, _ = analysed
    for name in ("hopper.jpg", "rgba.png", "deep.png", "phone.jpg", "large.jpg"):
        assert len(by_file[name]) == 1 and by_file[name][0]["box"] is not None, name
        assert by_file[name][0]["frame"] is None and by_file[name][0]["time"] is None
    assert len(by_file["group.png"]) == 3
    assert sorted(r["box"][0] for r in by_file["group.png"])[0] < 300 < sorted(r["box"][0] for r in by_file["group.png"])[-1] - 500


def test_boxes_are_in_the_upright_original_pixels(analysed):
    _, _, by_file, _ = analysed
    x, y, w, h = by_file["hopper.jpg"][0]["box"]
    centre = np.array([x + w / 2, y + h / 2])
    for name, factor in (("phone.jpg", 1), ("rgba.png", 1), ("large.jpg", 7)):
        bx, by, bw, bh = by_file[name][0]["box"]
        assert np.abs(np.array([bx + bw / 2, by + bh / 2]) / factor - centre).max() < 0.1 * w, name
        assert 0.85 < bw / factor / w < 1.15, name


def test_the_same_face_reads_the_same_in_every_format(analysed):
    """Files that hold the same pixels read the same: RGBA with a transparent
    strip and RGB with that strip white; 16-bit and 8-bit grey; and the two
    JPEGs (one stored sideways with an EXIF turn). A JPEG is not compared with
    a lossless file, nor colour with grey: BlazeFace sees colour, and a
    keypoint a pixel away moves the crop, by an amount that depends on the
    model, not on this code."""
    _, _, by_file, _ = analysed
    for a, b in (("rgba.png", "strip.png"), ("deep.png", "gray.png"), ("hopper.jpg", "phone.jpg")):
        pa, pb = by_file[a][0]["probabilities"], by_file[b][0]["probabilities"]
        assert max(abs(pa[c] - pb[c]) for c in CLASS_NAMES) < 0.02, (a, b)


def test_a_photo_without_a_face_is_a_record_and_a_line(analysed):
    result, _, by_file, _ = analysed
    assert by_file["no_face.png"] == [{"file": by_file["no_face.png"][0]["file"], "frame": None, "time": None,
                                       "face": None, "box": None, "keypoints": None, "probabilities": None,
                                       "emotion": None}]
    assert "no_face.png: no face found" in result.stdout


def test_stray_files_in_a_folder_are_skipped_with_one_warning_each(analysed):
    result, _, by_file, _ = analysed
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, result.stderr
    assert any("notes.txt" in w for w in warnings) and any("broken.png" in w for w in warnings)
    assert "notes.txt" not in by_file and "broken.png" not in by_file
    assert "Traceback" not in result.stderr


def test_video_frames_times_and_tracks(analysed):
    _, _, by_file, out = analysed
    rows = by_file["clip.mp4"]
    assert [r["frame"] for r in rows] == list(range(12))
    assert [r["time"] for r in rows] == pytest.approx([i / 10 for i in range(12)])
    assert {r["face"] for r in rows} == {0}  # One face, one track, though it moves.
    assert rows[-1]["box"][0] > rows[0]["box"][0] + 80
    video = cv2.VideoCapture(str(out / "annotated" / "clip.emotions.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    ok, frame = video.read()
    assert ok and frame.shape == (480, 640, 3)
    assert (out / "annotated" / "clip.emotions-timeline.png").stat().st_size > 10_000


def test_annotated_copies_and_csv(analysed):
    _, records, _, out = analysed
    for name in ("hopper", "group", "no_face", "rgba", "deep", "phone", "large"):
        assert (out / "annotated" / f"{name}.emotions.png").is_file(), name
    with open(out / "faces.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["file", "frame", "time", "face", "x", "y", "w", "h", "emotion", *CLASS_NAMES]
    assert len(rows) == len(records)
    face_rows = [r for r in rows if r["x"]]
    assert all(abs(sum(float(r[c]) for c in CLASS_NAMES) - 1) < 1e-3 for r in face_rows)
    assert [r for r in rows if not r["x"]][0]["emotion"] == ""


def test_every_n_frames(inputs, tmp_path):
    result = run_main("emotions.py", str(inputs / "clip.mp4"), "--every", "4", "--json", str(tmp_path / "v.json"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["frame"] for r in json.loads((tmp_path / "v.json").read_text())] == [0, 4, 8]
    assert "clip.mp4" in result.stdout  # The per-track summary.


@pytest.mark.parametrize("case", ["missing", "truncated", "not an image"])
def test_bad_files_named_on_the_command_line(tmp_path, inputs, case):
    path = tmp_path / {"missing": "nowhere.jpg", "truncated": "cut.png", "not an image": "notes.jpg"}[case]
    if case == "truncated":
        truncated_png(path)
    elif case == "not an image":
        path.write_text("hello")
    out = tmp_path / "faces.json"
    result = run_main("emotions.py", str(inputs / "hopper.jpg"), str(path), "--json", str(out),
                        "--out-dir", str(tmp_path / "annotated"))
    assert_one_line_error(result, str(path))
    assert not out.exists()  # Nothing half-written,
    assert not (tmp_path / "annotated").exists() or not any((tmp_path / "annotated").iterdir())  # nor a good file's copy.


def test_an_output_folder_inside_the_input_folder_is_not_read_back(tmp_path):
    Image.fromarray(hopper_rgb()).save(tmp_path / "me.jpg")
    for _ in range(2):
        result = run_main("emotions.py", str(tmp_path), "--out-dir", str(tmp_path / "annotated"),
                            "--json", str(tmp_path / "out.json"))
        assert result.returncode == 0, result.stderr[-3000:]
    assert [os.path.basename(r["file"]) for r in json.loads((tmp_path / "out.json").read_text())] == ["me.jpg"]
    assert (tmp_path / "annotated" / "me.emotions.png").is_file()


def test_a_one_pixel_image_and_a_cmyk_jpeg(tmp_path):
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    Image.fromarray(hopper_rgb()).convert("CMYK").save(tmp_path / "print.jpg", quality=92)
    out = tmp_path / "faces.json"
    result = run_main("emotions.py", str(tmp_path / "dot.png"), str(tmp_path / "print.jpg"), "--json", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    by_file = {os.path.basename(r["file"]): r for r in json.loads(out.read_text())}
    assert by_file["dot.png"]["box"] is None and "dot.png: no face found" in result.stdout
    assert by_file["print.jpg"]["box"] is not None and by_file["print.jpg"]["keypoints"] is not None


def test_detect_size_is_for_the_detectors_that_use_it(inputs, tmp_path):
    """--detect-size sizes Haar's and MTCNN's working copy; with BlazeFace, which ignores it, it is refused."""
    refused = run_main("emotions.py", str(inputs / "hopper.jpg"), "--detect-size", "1200")
    assert_one_line_error(refused, "--detect-size applies to --detector haar and mtcnn")
    # Haar on a 64-pixel working copy of the 512x600 photo: too small to find the face; at 640 it does.
    small = run_main("emotions.py", str(inputs / "hopper.jpg"), "--detector", "haar", "--detect-size", "64")
    large = run_main("emotions.py", str(inputs / "hopper.jpg"), "--detector", "haar", "--detect-size", "640")
    assert small.returncode == large.returncode == 0, small.stderr[-2000:] + large.stderr[-2000:]
    assert "no face found" in small.stdout and "1 face(s)" in large.stdout


def test_no_align_crops_the_face_upright_as_found(inputs, tmp_path):
    """--no-align: the same face and box, cropped without turning it, so the probabilities differ a little."""
    aligned, upright = tmp_path / "aligned.json", tmp_path / "upright.json"
    assert run_main("emotions.py", str(inputs / "hopper.jpg"), "--json", str(aligned)).returncode == 0
    assert run_main("emotions.py", str(inputs / "hopper.jpg"), "--no-align", "--json", str(upright)).returncode == 0
    (a,), (u,) = json.loads(aligned.read_text()), json.loads(upright.read_text())
    assert a["box"] == u["box"]
    assert a["probabilities"] != u["probabilities"]
    assert max(abs(a["probabilities"][c] - u["probabilities"][c]) for c in a["probabilities"]) < 0.5


def test_photos_read_two_at_a_time_come_out_in_the_files_order(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    face, blank = hopper_rgb(), np.full((300, 400, 3), 128, np.uint8)
    for i in range(6):  # Faces and blank pictures in turn, the faces mirrored every other time.
        picture = (face if i % 4 == 0 else face[:, ::-1]) if i % 2 == 0 else blank
        Image.fromarray(np.ascontiguousarray(picture)).save(folder / f"{i}.png")
    out = tmp_path / "photos.json"
    result = run_main("emotions.py", folder, "--json", out)
    assert result.returncode == 0, result.stderr[-2000:]
    records = json.loads(out.read_text())
    assert [os.path.basename(r["file"]) for r in records] == [f"{i}.png" for i in range(6)]
    assert [r["box"] is not None for r in records] == [True, False] * 3
    missing = [line for line in result.stdout.splitlines() if line.endswith("no face found")]
    assert missing == [f"{folder / f'{i}.png'}: no face found" for i in (1, 3, 5)]
    # The mirrored face reads as the face does, whichever photo finished first.
    assert records[0]["emotion"] == records[2]["emotion"] == records[4]["emotion"]
