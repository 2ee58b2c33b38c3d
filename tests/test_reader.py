"""The public API (ferkit.EmotionReader) and the `ferkit` command: a photo
from a path, a NumPy image in BGR or RGB, a PIL image, grey; a video with
steady readings; one-line errors; nothing printed."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import ROOT

from ferkit import EmotionReader
from ferkit.errors import DataError, ModelFileError


def hopper_path():
    from matplotlib import cbook

    return cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


@pytest.fixture(scope="module")
def reader():
    return EmotionReader()


def test_a_path_numpy_pil_and_grey_give_the_same_face(reader, capsys):
    from PIL import Image

    (face,) = reader.read(hopper_path())
    assert face["file"] == hopper_path() and face["emotion"] in reader.class_names
    assert set(face) >= {"box", "keypoints", "probabilities", "emotion"}
    assert abs(sum(face["probabilities"].values()) - 1) < 1e-3
    bgr = cv2.imread(hopper_path())
    same = [reader.read(bgr), reader.read(bgr[:, :, ::-1].copy(), bgr=False), reader.read(Image.open(hopper_path()))]
    for (other,) in same:
        assert other["box"] == face["box"]
        assert max(abs(other["probabilities"][c] - p) for c, p in face["probabilities"].items()) < 0.02
    # RGB taken for BGR swaps red and blue: another picture, other numbers.
    (swapped,) = reader.read(bgr[:, :, ::-1].copy())
    assert swapped["probabilities"] != same[0][0]["probabilities"]
    (grey,) = reader.read(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))  # The detector sees grey: a pixel's difference.
    assert max(abs(a - b) for a, b in zip(grey["box"], face["box"])) <= 2
    assert capsys.readouterr() == ("", "")  # A library prints nothing.
    assert reader.read(np.full((200, 300, 3), 128, np.uint8)) == []


def test_bad_input_raises_one_line_errors(reader, tmp_path):
    with pytest.raises(DataError, match="no such file"):
        reader.read(str(tmp_path / "missing.jpg"))
    with pytest.raises(ValueError, match="must be uint8"):
        reader.read(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="got shape"):
        reader.read(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ModelFileError, match="no such model file"):
        EmotionReader(model=str(tmp_path / "none.onnx"))
    with pytest.raises(ValueError, match="detector 'nope'"):
        EmotionReader(detector="nope")
    with pytest.raises(DataError, match="no such file"):
        next(reader.read_video(str(tmp_path / "none.mp4")))


def test_what_a_new_user_passes_gets_an_answer_or_a_line_that_says_what_to_pass(reader, tmp_path):
    # No pixels: a one-line error, not a ZeroDivisionError from the detector.
    for empty in (np.zeros((0, 0, 3), np.uint8), np.zeros((0, 5), np.uint8)):
        with pytest.raises(ValueError, match="at least one pixel"):
            reader.read(empty)
    # An encoded file's bytes (what a web upload gives) read as the file would.
    data = open(hopper_path(), "rb").read()
    (from_bytes,), (from_file,) = reader.read(data), reader.read(hopper_path())
    assert from_bytes["box"] == from_file["box"] and from_bytes["probabilities"] == from_file["probabilities"]
    assert from_bytes["file"] is None
    with pytest.raises(ValueError, match="pass the encoded file's bytes themselves"):
        reader.read(np.array(data))  # The same bytes as a NumPy scalar: |S dtype.
    with pytest.raises(ValueError, match="these bytes are empty"):
        reader.read(b"")
    with pytest.raises(DataError, match="the image bytes: not an image file"):
        reader.read(b"certainly not a picture")
    # A photo handed to read_video: told to use read(), not one silent frame.
    png = tmp_path / "face.png"
    cv2.imwrite(str(png), cv2.imread(hopper_path()))
    with pytest.raises(DataError, match="is a photo, not a video: read it with read()"):
        next(reader.read_video(str(png)))


def test_read_video_yields_each_frame_with_tracks_and_smoothing(reader, tmp_path):
    face = cv2.imread(hopper_path())[80:360, 130:400]
    path = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    for i in range(8):
        frame = np.full((480, 640, 3), 200, np.uint8)
        frame[100:380, 60 + 10 * i : 330 + 10 * i] = face
        writer.write(frame)
    writer.release()
    frames = list(reader.read_video(path, every=2))
    assert [f for f, _, _ in frames] == [0, 2, 4, 6]
    assert [t for _, t, _ in frames] == [0.0, 0.2, 0.4, 0.6]
    assert all(len(records) == 1 and records[0]["face"] == 0 for _, _, records in frames)
    first, *rest = [records[0] for _, _, records in frames]
    assert first["probabilities"] == first["raw_probabilities"]  # Nothing to average yet.
    assert any(r["probabilities"] != r["raw_probabilities"] for r in rest)
    (raw,) = next(reader.read_video(path, smooth=0))[2]
    assert "raw_probabilities" not in raw
    # The command line's --json is this very loop: the same records, value for value.
    from conftest import run_main

    out = tmp_path / "clip.json"
    result = run_main("emotions.py", path, "--every", "2", "--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(out.read_text()) == [r for _, _, records in frames for r in records]


def test_following_faces_between_detections_keeps_every_face_and_its_box(tmp_path):
    face = cv2.imread(hopper_path())[80:360, 130:400]
    path = str(tmp_path / "moving.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30, (1280, 720))
    for i in range(20):  # The face walks 8 px a frame.
        frame = np.full((720, 1280, 3), 200, np.uint8)
        frame[200:480, 100 + 8 * i : 370 + 8 * i] = face
        writer.write(frame)
    writer.release()
    every_frame = list(EmotionReader(detect_every=1).read_video(path, smooth=0))
    followed = list(EmotionReader(detect_every=5).read_video(path, smooth=0))
    assert len(followed) == len(every_frame) == 20
    for (_, _, detected), (_, _, tracked) in zip(every_frame, followed):
        assert len(detected) == len(tracked) == 1 and tracked[0]["face"] == 0  # One track throughout.
        side = detected[0]["box"][2]
        assert np.abs(np.subtract(detected[0]["box"], tracked[0]["box"])).max() <= 0.06 * side  # The refit alone: 12%
    with pytest.raises(ValueError, match="detect_every"):
        EmotionReader(detect_every=0)
    with pytest.raises(ValueError, match="video_tta"):
        EmotionReader(video_tta="tencrop")


def test_a_video_left_half_read_stops_its_decoding_thread(reader, tmp_path):
    import threading

    path = str(tmp_path / "long.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30, (320, 240))
    for i in range(120):
        writer.write(np.full((240, 320, 3), i * 2, np.uint8))
    writer.release()
    frames = reader.frames(path)
    assert [next(frames).index for _ in range(3)] == [0, 1, 2]
    assert any(t.name == "video-decoder" for t in threading.enumerate())  # Decoding ahead of the reader.
    frames.close()
    assert not any(t.name == "video-decoder" for t in threading.enumerate())
    assert [f.index for f in reader.frames(path, every=40)][::40] == [0, 40, 80]  # Read to the end again.


def test_the_ferkit_command_reads_a_photo_outside_the_clone(tmp_path):
    """The installed package (an editable install here, the wheel in CI's
    light environment) from a folder that is not the repository."""
    command = os.path.join(os.path.dirname(sys.executable), "ferkit")
    if not os.path.exists(command):
        pytest.skip("the ferkit command is not installed (pip install -e . or the wheel)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([command, "emotions", hopper_path()], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "grace_hopper.jpg" in result.stdout and result.stderr == ""
    api = subprocess.run([sys.executable, "-c", "from ferkit import EmotionReader; import sys; "
                          "print(EmotionReader().read(sys.argv[1])[0]['emotion'], 'tensorflow' in sys.modules)",
                          hopper_path()], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert api.returncode == 0 and api.stdout.split()[1] == "False", api.stderr  # No TensorFlow for an .onnx model.
    bad = subprocess.run([command, "frobnicate"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "no subcommand 'frobnicate'" in bad.stderr
    missing = subprocess.run([command, "emotions", "nope.jpg"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0 and "nope.jpg" in missing.stderr


def test_ferkit_serve_serves_the_page_outside_the_clone(tmp_path):
    """`ferkit serve` from a folder that is not the repository: the page and
    its scripts come from the package (the wheel carries static/), and the
    server answers. Without the clone's node_modules the page runs in server mode."""
    import socket
    import time
    import urllib.request

    command = os.path.join(os.path.dirname(sys.executable), "ferkit")
    if not os.path.exists(command):
        pytest.skip("the ferkit command is not installed (pip install -e . or the wheel)")
    pytest.importorskip("fastapi")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    server = subprocess.Popen([command, "serve", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                health = json.loads(urllib.request.urlopen(url + "/api/health", timeout=1).read())
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.25)
        else:
            pytest.fail("ferkit serve did not answer within 30 s")
        page = urllib.request.urlopen(url + "/", timeout=5).read().decode()
        script = urllib.request.urlopen(url + "/static/app.js", timeout=5).read().decode()
        assert '<script type="module" src="/static/app.js">' in page and "createLocalAnalyser" in script
        assert health["classes"] and health["model"].endswith(".onnx")
    finally:
        server.terminate()
        server.wait(timeout=10)
