"""serve.py: the JSON API on real and hostile uploads (FastAPI's TestClient),
and the page in a real headless Chromium with a fake camera (Playwright)."""
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, run_main

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from benchmarks.bench_page import BARS_HOLD_A_FACE, fake_camera_flags, free_port, write_y4m  # noqa: E402
from ferkit.programs import cli  # noqa: E402

MODEL = cli.released_model(cli.EMOTIONS_MODEL, prefer_onnx=True)  # What serve.py runs by default.


def grace_hopper():
    import matplotlib.cbook

    return matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


@pytest.fixture(scope="module")
def client():
    import serve

    app, _ = serve.build(MODEL)
    return TestClient(app)


def png_bytes(rgb):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def test_health_names_the_model_and_its_classes(client):
    answer = client.get("/api/health").json()
    assert answer["model"] == os.path.basename(MODEL) and answer["runtime"] == "onnxruntime"
    assert answer["classes"][:7] == ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]
    assert set(answer["colours"]) == set(answer["classes"])


def test_the_servers_answer_is_the_inference_cores(client):
    """The server reads a frame through EmotionReader, the core every door uses."""
    from ferkit import EmotionReader

    data = open(grace_hopper(), "rb").read()
    answer = client.post("/api/emotions", files={"file": ("grace.jpg", data, "image/jpeg")}).json()
    expected = [dict(r, file="grace.jpg") for r in EmotionReader(MODEL).read(data, thorough=False)]
    assert answer["faces"] == expected and len(expected) == 1


def test_a_photo_gets_the_same_faces_as_emotions_py(client, tmp_path):
    """A dropped photo (?photo=1) is searched as emotions.py searches a photo."""
    data = open(grace_hopper(), "rb").read()
    raw = client.post("/api/emotions?photo=1", content=data, headers={"content-type": "image/jpeg"})
    form = client.post("/api/emotions?photo=1", files={"file": ("grace.jpg", data, "image/jpeg")})
    assert raw.status_code == form.status_code == 200
    assert raw.json()["faces"][0]["probabilities"] == form.json()["faces"][0]["probabilities"]
    assert form.json()["faces"][0]["file"] == "grace.jpg" and raw.json()["milliseconds"] > 0
    assert (raw.json()["width"], raw.json()["height"]) == (512, 600)
    result = run_main("emotions.py", grace_hopper(), "--model", MODEL, "--json", str(tmp_path / "e.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    expected = json.loads((tmp_path / "e.json").read_text())[0]
    got = raw.json()["faces"][0]
    assert got["box"] == expected["box"] and got["emotion"] == expected["emotion"]
    for name, p in expected["probabilities"].items():
        assert got["probabilities"][name] == pytest.approx(p, abs=1e-5)


def test_a_photo_without_a_face(client):
    answer = client.post("/api/emotions", content=png_bytes(np.full((200, 300, 3), 128, np.uint8)))
    assert answer.status_code == 200 and answer.json()["faces"] == []


@pytest.mark.parametrize("body, status, problem", [
    (b"just some text", 415, "not an image file"),
    (b"", 415, "holds no image"),
    ("truncated", 415, "cannot decode the image"),
    ("oversized", 413, "at most 10,485,760"),
    ("bomb", 413, "more pixels than allowed"),
    ("large", 413, "8000 x 8000 pixels is more than the 50,000,000 allowed"),
])
def test_bad_uploads_get_a_json_error_and_the_server_stays_up(client, body, status, problem):
    if body == "truncated":
        body = png_bytes(np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8))[:5000]
    elif body == "oversized":
        body = b"\x89PNG" + b"\0" * (10 * 2**20 + 1)
    elif body == "bomb":
        body = decompression_bomb()
    elif body == "large":
        body = decompression_bomb(8000)
    answer = client.post("/api/emotions", content=body, headers={"content-type": "image/png"})
    assert answer.status_code == status
    assert problem in answer.json()["error"]
    assert client.get("/api/health").status_code == 200  # Still serving.


def decompression_bomb(side=50_000):
    """A PNG of a few hundred bytes whose header claims side x side pixels."""
    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])  # 8-bit grayscale
    rows = zlib.compress(b"\0" * (side + 1) * 4)  # The first rows only.
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_a_multipart_upload_without_a_file_field(client):
    answer = client.post("/api/emotions", files={"photo": ("a.jpg", open(grace_hopper(), "rb").read(), "image/jpeg")})
    assert answer.status_code == 400 and "field named 'file'" in answer.json()["error"]


def test_the_page_and_its_scripts_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "getUserMedia" not in page.text and "/static/app.js" in page.text
    script = client.get("/static/app.js").text
    assert "getUserMedia" in script and "/api/emotions" in script
    assert "http://" not in page.text + script.replace("http://127.0.0.1", "")  # Nothing fetched from outside.


# The browser ------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    port = free_port()
    process = subprocess.Popen([sys.executable, "serve.py", "--model", MODEL, "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/api/health", timeout=1)
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(process.stdout.read())
            time.sleep(0.25)
    else:  # Never answered: no test goes on against a dead URL.
        process.kill()
        pytest.fail(f"serve.py did not answer on {url} within 30 s")
    yield url
    process.terminate()
    process.wait(timeout=10)


def fake_camera(tmp_path, rgb):
    """Chromium's flags for a fake camera that shows rgb."""
    camera = tmp_path / "camera.y4m"
    write_y4m(camera, rgb)
    return fake_camera_flags(camera)


def grace_hopper_camera(tmp_path):
    """Chromium's flags for a fake camera that shows the test photo."""
    from ferkit.vision.images import read_image

    return fake_camera(tmp_path, read_image(grace_hopper()))


# The page's mode line once the in-browser models are loaded.
IN_BROWSER_MODE = "document.querySelector('#mode').textContent.includes('in this browser')"
# The bars of FER2013's seven classes, holding a face (summing to 1).
SEVEN_BARS_HOLD_A_FACE = """() => document.querySelectorAll('#bars li').length === 7 &&
    [...document.querySelectorAll('#bars li > span:last-child')]
    .reduce((s, e) => s + parseFloat(e.textContent), 0) > 0.9"""


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium here (apt-get install chromium)")
    pytest.importorskip("playwright")
    return path


def chromium_with_onnxruntime_web():
    """chromium(), for tests of the in-browser mode, which also needs npm ci's onnxruntime-web."""
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "onnxruntime-web", "dist")):
        pytest.skip("onnxruntime-web is not installed here (npm ci)")
    return chromium()


def test_the_page_reads_a_face_from_the_camera_and_a_dropped_photo(server, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    args = grace_hopper_camera(tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=args)
        page = browser.new_page(viewport={"width": 1100, "height": 900}, accept_downloads=True)
        page.goto(server)
        page.wait_for_function("document.querySelector('#model').textContent.includes('onnxruntime')")
        page.click("#camera")
        # The largest face's bars and the frame rate appear once a frame is analysed.
        page.wait_for_function("document.querySelector('#rate').textContent.includes('frames/s')", timeout=20000)
        # The bars hold a real face's probabilities: every class, summing to 1.
        page.wait_for_function(BARS_HOLD_A_FACE, timeout=20000)
        shown = page.eval_on_selector_all("#bars li > span:last-child", "items => items.map(s => s.textContent)")
        values = [float(text) for text in shown]
        assert len(values) == 8 and abs(sum(values) - 1) < 0.05, shown
        drawn = page.evaluate("""() => { const c = document.querySelector('#overlay');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }""")
        assert drawn > 500  # A box and its label are drawn over the video.
        page.set_input_files("#files", grace_hopper())
        page.wait_for_selector(".result table", timeout=20000)
        assert "1 face(s)" in page.inner_text(".result")
        with page.expect_download() as info:  # The annotated photo, as a PNG.
            page.click(".result .save-photo")
        annotated = tmp_path / info.value.suggested_filename
        info.value.save_as(annotated)
        assert annotated.name == "grace_hopper.emotions.png" and annotated.read_bytes()[:4] == b"\x89PNG"
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})  # A phone: nothing wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 391
        if os.environ.get("SERVE_SCREENSHOT"):
            shutil.copy(tmp_path / "page.png", os.environ["SERVE_SCREENSHOT"])
        browser.close()
    assert (tmp_path / "page.png").stat().st_size > 50_000


def test_bench_serve_counts_frames_without_errors(server):
    result = run_main("bench.py", "serve", "--url", server, "--clients", "2", "--seconds", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    line = [l for l in result.stdout.splitlines() if l.startswith("serve:")][0]
    assert " 0 errors" in line and "frames/s" in line and "p95" in line


def test_bench_page_times_both_modes_in_chromium():
    """bench.py page: its own server and browser, a line per mode with the
    start-up, the first result and frames/s read off the page's rate line."""
    chromium_with_onnxruntime_web()
    result = run_main("bench.py", "page", "--seconds", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = {l.split()[0]: l for l in result.stdout.splitlines() if l.startswith("  ")}
    assert sorted(lines) == ["browser", "server"], result.stdout
    assert "(in this browser)" in lines["browser"] and "(server " in lines["server"], result.stdout
    for line in lines.values():
        first = float(line.split("first result ")[1].split(" s")[0])
        rate = float(line.split("button, ")[1].split(" frames/s")[0])
        # 18-31 frames/s measured on 2 cores; 5 still passes with the test suite's second worker beside it.
        assert 0 < first < 20 and rate > 5, line


def test_bench_page_without_chromium_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # No chromium on it.
    assert_one_line_error(run_main("bench.py", "page"), "page: no chromium here")


def test_the_page_says_no_face_and_clears_its_boxes_when_the_camera_stops(server, tmp_path):
    """A camera that shows no face: the page says so and plots a gap, not zeros;
    stopping the camera leaves no box drawn."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    args = fake_camera(tmp_path, np.full((480, 640, 3), 180, np.uint8))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=args)
        page = browser.new_page()
        page.goto(server)
        page.wait_for_function("document.querySelector('#model').textContent.includes('onnxruntime')")
        page.click("#camera")
        page.wait_for_function("document.querySelector('#rate').textContent.includes('frames/s')", timeout=20000)
        assert page.is_visible("#no-face") and page.inner_text("#no-face") == "No face in view."
        assert not page.is_visible("#camera-message")
        page.click("#camera")  # Stop.
        drawn = page.evaluate("""() => { const c = document.querySelector('#overlay');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }""")
        assert drawn == 0 and page.inner_text("#camera") == "Start the camera"
        browser.close()


def test_in_browser_mode_reads_the_face_without_sending_frames(server, tmp_path):
    """With onnxruntime-web installed (npm ci), camera frames are analysed in
    the page: a face and its emotions, and no frame posted to the server."""
    from playwright.sync_api import sync_playwright

    from ferkit.vision.images import read_image

    executable = chromium_with_onnxruntime_web()
    args = grace_hopper_camera(tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=args)
        page = browser.new_page()
        posted = []
        page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
        page.goto(server)
        page.wait_for_function(IN_BROWSER_MODE, timeout=60000)
        assert page.evaluate("self.crossOriginIsolated")  # So WebAssembly may use threads.
        assert "off the page's main thread" in page.inner_text("#mode")  # The models run in a Web Worker.
        page.click("#camera")
        page.wait_for_function(BARS_HOLD_A_FACE, timeout=60000)
        page.wait_for_timeout(3000)  # A few seconds of frames, for the rate line.
        rate = page.inner_text("#rate")
        assert "in this browser" in rate, rate
        assert posted == [], posted  # No frame left the page.
        # The other released model, chosen in the page: FER2013's seven classes.
        page.select_option("#model-choice", "fer2013_cnn")
        page.wait_for_function(SEVEN_BARS_HOLD_A_FACE, timeout=60000)
        assert posted == [], posted
        # A dropped photo is analysed here too: a table, and still nothing posted.
        page.set_input_files("#files", grace_hopper())
        page.wait_for_selector(".result table", timeout=60000)
        assert "1 face(s)" in page.inner_text(".result") and posted == [], posted
        # The same photos here and on the server (?photo=1: as emotions.py reads a photo,
        # test_a_photo_gets_the_same_faces_as_emotions_py), with the FER+ model.
        # And a face that fills the picture, found by the close-up pass in both.
        got = page.evaluate(COMPARE_WITH_SERVER, [photo_url(png_bytes(read_image(grace_hopper())), "image/png"),
                                                 photo_url(open(grace_hopper(), "rb").read(), "image/jpeg"),
                                                 photo_url(png_bytes(close_up(read_image(grace_hopper()))), "image/png")])
        browser.close()
    differences = {}
    for name, faces in zip(["PNG", "JPEG", "close-up PNG"], got):
        for kind, (here, there) in (("", faces[:2]), (" as a frame", faces[2:])):
            assert len(here) == len(there) == 1
            assert here[0]["emotion"] == there[0]["emotion"]
            assert max(abs(a - b) for a, b in zip(here[0]["box"], there[0]["box"])) <= (4 if kind else 0)
            differences[name + kind] = max(abs(here[0]["probabilities"][c] - p)
                                           for c, p in there[0]["probabilities"].items())
    print(f"in-browser: {rate}; largest probability difference from the server's: "
          + ", ".join(f"{k} {v:.2e}" for k, v in differences.items()))
    # The same pixels give the same faces (pixels.js is OpenCV's arithmetic):
    # 4.2e-6 measured as PNG and as JPEG (the browser's JPEG decoder gave the
    # same pixels). The close-up pass's short-range model on onnxruntime-web
    # moves the keypoints a little: 1.1e-4 measured.
    assert differences["PNG"] < 2e-5 and differences["JPEG"] < 2e-5
    assert differences["close-up PNG"] < 1e-3
    # A live frame trades that for speed: its detector input is the canvas's (4.6e-3 and 5.7e-3 measured).
    assert differences["PNG as a frame"] < 0.02 and differences["close-up PNG as a frame"] < 0.02


def test_a_camera_started_while_the_models_load_sends_no_frame(server, tmp_path):
    """The camera clicked the moment the page opens, before the in-browser
    models have loaded: it waits for them, says so, and posts nothing over
    the whole session, in every one of three runs."""
    from playwright.sync_api import sync_playwright

    executable = chromium_with_onnxruntime_web()
    args = grace_hopper_camera(tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=args)
        for run in range(3):
            page = browser.new_page()
            posted = []
            page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
            page.goto(server)
            page.click("#camera")  # At once: the models are still loading.
            page.wait_for_function(BARS_HOLD_A_FACE, timeout=60000)
            page.wait_for_timeout(1000)
            page.click("#camera")  # The session ends.
            assert posted == [], (run, posted)
            assert "in this browser" in page.inner_text("#mode")
            page.close()
        browser.close()


def test_where_the_browser_has_webgpu_the_models_run_on_it(server):
    """Chromium's SwiftShader adapter stands in for a GPU: the page picks
    WebGPU, says so, and reads a photo (one pass, as a camera frame) as the
    server does."""
    from playwright.sync_api import sync_playwright

    from ferkit.vision.images import read_image

    executable = chromium_with_onnxruntime_web()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable,
                                    args=["--no-sandbox", "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"])
        page = browser.new_page()
        page.goto(server)
        page.wait_for_function(IN_BROWSER_MODE, timeout=60000)
        assert "(WebGPU, off the page's main thread)" in page.inner_text("#mode")  # In the page's worker.
        photo = photo_url(png_bytes(read_image(grace_hopper())), "image/png")
        here, there, backend = page.evaluate("""async (photo) => {
            const health = await (await fetch('/api/health')).json();
            const local = await (await import('/static/local.js')).createLocalAnalyser(health.classes, health.constants);
            const blob = await (await fetch(photo)).blob();
            const image = await createImageBitmap(blob, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
            const answer = await local.analyse(image, image.width, image.height, {thorough: true});
            const server = await (await fetch('/api/emotions?photo=1', {method: 'POST', body: blob,
                headers: {'Content-Type': 'image/png'}})).json();
            return [answer.faces, server.faces, local.backend]; }""", photo)
        browser.close()
    assert backend == "WebGPU" and len(here) == len(there) == 1 and here[0]["box"] == there[0]["box"]
    difference = max(abs(here[0]["probabilities"][c] - p) for c, p in there[0]["probabilities"].items())
    print(f"WebGPU (SwiftShader) against the server: largest probability difference {difference:.2e}")
    assert difference < 1e-3


def close_up(rgb, side=256):
    """The photo cropped to BlazeFace's box, side x side: a face that fills
    the picture, which only the close-up pass finds."""
    import cv2

    from ferkit.vision.blazeface import BlazeFace

    (x, y, w, h), _, _ = BlazeFace()(rgb)[0]
    crop = cv2.resize(rgb[y : y + h, x : x + w], (side, side), interpolation=cv2.INTER_AREA)
    assert BlazeFace(close_up=False)(crop) == []
    return crop


def photo_url(data, mime):
    import base64

    return f"data:{mime};base64," + base64.b64encode(data).decode()


# For each photo (data: URLs): [faces here, on the server, here as a live frame, on the server as a frame].
COMPARE_WITH_SERVER = """async (photos) => {
    const health = await (await fetch('/api/health')).json();
    const local = await (await import('/static/local.js')).createLocalAnalyser(health.classes, health.constants);
    const out = [];
    for (const photo of photos) {
        const blob = await (await fetch(photo)).blob();
        const image = await createImageBitmap(blob, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
        const here = await local.analyse(image, image.width, image.height, {thorough: true});
        const there = await (await fetch('/api/emotions?photo=1', {method: 'POST', body: blob,
            headers: {'Content-Type': blob.type}})).json();
        // A live frame's path: the detector's input shrunk by the canvas, not by OpenCV's arithmetic.
        const live = await local.analyse(image, image.width, image.height);
        const frame = await (await fetch('/api/emotions', {method: 'POST', body: blob,
            headers: {'Content-Type': blob.type}})).json();
        out.push([here.faces, there.faces, live.faces, frame.faces]);
    }
    return out; }"""


def test_the_session_downloads_and_a_snapshot(server, tmp_path):
    """The camera session as JSON and CSV, and a PNG snapshot of the mirrored view with its boxes."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    args = grace_hopper_camera(tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=args)
        page = browser.new_page(accept_downloads=True)
        page.goto(server)
        page.wait_for_function("document.querySelector('#mode').textContent.includes('Camera frames')", timeout=60000)
        page.click("#camera")
        page.wait_for_function("document.querySelector('#rate').textContent.includes('frames/s')", timeout=60000)
        assert "mirrored" in page.get_attribute("#stage", "class")  # The selfie view is the default.
        saved = {}
        for button in ("save-json", "save-csv", "snapshot"):
            with page.expect_download() as info:
                page.click(f"#{button}")
            path = tmp_path / info.value.suggested_filename
            info.value.save_as(path)
            saved[button] = path
        browser.close()
    frames = json.loads(saved["save-json"].read_text())
    assert frames and any(f["faces"] for f in frames)
    face = next(f for f in frames if f["faces"])["faces"][0]
    assert set(face) >= {"box", "probabilities", "emotion"} and abs(sum(face["probabilities"].values()) - 1) < 0.01
    lines = saved["save-csv"].read_text().splitlines()
    assert lines[0].startswith("time,face,x,y,w,h,emotion,Angry") and len(lines) > 1
    assert saved["snapshot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and saved["snapshot"].stat().st_size > 10_000


def test_a_refused_camera_is_a_message(server):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable,
                                    args=["--no-sandbox", "--use-fake-device-for-media-stream", "--deny-permission-prompts"])
        page = browser.new_page()
        page.goto(server)
        page.wait_for_function("document.querySelector('#mode').textContent.includes('Camera frames')", timeout=60000)
        page.click("#camera")
        page.wait_for_selector("#camera-message:not([hidden])", timeout=20000)
        assert "camera was refused" in page.inner_text("#camera-message")
        assert page.inner_text("#camera") == "Start the camera"
        browser.close()


def test_the_page_recovers_when_the_server_comes_back(tmp_path):
    """Server mode: the server stops mid-stream (a message on the page), then
    starts again on the same port (the page goes on by itself, the message goes)."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    port = free_port()
    start = lambda: subprocess.Popen([sys.executable, "serve.py", "--model", MODEL, "--port", str(port)], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_up():
        import urllib.request

        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1)
                return
            except OSError:
                time.sleep(0.25)
        raise AssertionError("serve.py did not start")

    args = grace_hopper_camera(tmp_path)
    process = start()
    try:
        wait_up()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=args)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/?mode=server")
            page.wait_for_function("document.querySelector('#mode').textContent.includes('go to the server')")
            page.click("#camera")
            page.wait_for_function("document.querySelector('#rate').textContent.includes('server')", timeout=20000)
            process.terminate()
            process.wait(timeout=10)
            page.wait_for_selector("#camera-message:not([hidden])", timeout=20000)
            assert "did not analyse a frame" in page.inner_text("#camera-message")
            process = start()
            wait_up()
            page.wait_for_selector("#camera-message", state="hidden", timeout=20000)
            before = page.inner_text("#rate")
            page.wait_for_function(f"document.querySelector('#rate').textContent !== {json.dumps(before)}", timeout=20000)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


# Counts the page's camera requests and makes each take a moment, as a real
# camera's permission and start-up do, so that a second click lands while the
# first is still opening.
COUNT_CAMERA_OPENS = """
window.cameraOpens = 0;
const open = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
  window.cameraOpens += 1;
  await new Promise((r) => setTimeout(r, 300));
  return open(constraints);
};
"""


def test_a_double_click_on_the_camera_button_opens_one_camera(server, tmp_path):
    """The button is disabled while the camera opens: a double click starts one
    stream and one loop, and the button then offers to stop it."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    args = grace_hopper_camera(tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=args)
        page = browser.new_page()
        page.add_init_script(COUNT_CAMERA_OPENS)
        page.goto(server)
        page.wait_for_function("document.querySelector('#model').textContent.includes('onnxruntime')")
        page.dblclick("#camera")
        page.wait_for_function(BARS_HOLD_A_FACE, timeout=60000)
        page.wait_for_timeout(700)  # Past the second click's camera, had it been asked for.
        assert page.evaluate("window.cameraOpens") == 1
        assert page.inner_text("#camera") == "Stop the camera"
        page.click("#camera")
        assert page.inner_text("#camera") == "Start the camera"
        browser.close()


def test_switching_models_while_the_camera_runs_keeps_the_bars_whole(server, tmp_path):
    """Model switches in the middle of camera frames: a frame read by the model
    before a switch is dropped, so no error reaches the page and the bars end
    with the last model's classes, summing to 1."""
    from playwright.sync_api import sync_playwright

    executable = chromium_with_onnxruntime_web()
    args = grace_hopper_camera(tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=args)
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(server)
        page.wait_for_function(IN_BROWSER_MODE, timeout=60000)
        page.click("#camera")
        page.wait_for_function(BARS_HOLD_A_FACE, timeout=60000)
        for name in ["fer2013_cnn", "ferplus_cnn", "fer2013_cnn", "ferplus_cnn", "fer2013_cnn"]:
            page.select_option("#model-choice", name)
            page.wait_for_timeout(60)  # Shorter than a frame: switches land while frames are read.
        page.wait_for_function(SEVEN_BARS_HOLD_A_FACE, timeout=60000)
        page.wait_for_timeout(1000)  # More frames with the last model.
        shown = page.eval_on_selector_all("#bars li > span:last-child", "items => items.map(s => s.textContent)")
        assert len(shown) == 7 and abs(sum(map(float, shown)) - 1) < 0.05, shown
        assert not page.is_visible("#camera-message"), page.inner_text("#camera-message")
        browser.close()
    assert errors == [], errors


# Opaque pixels of the overlay near white, and near black.
OVERLAY_INK = """() => { const c = document.querySelector('#overlay');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let white = 0, black = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] < 255) continue;
      if (d[i] > 220 && d[i + 1] > 220 && d[i + 2] > 220) white++;
      if (d[i] < 35 && d[i + 1] < 35 && d[i + 2] < 35) black++;
    }
    return [white, black]; }"""


@pytest.mark.parametrize("colour, ink", [([40, 30, 90], "white"), ([250, 235, 150], "black")])
def test_a_label_is_written_in_the_ink_that_reads_on_its_colour(server, tmp_path, colour, ink):
    """Every emotion given one colour (the server's colours replaced): on a
    dark label the text is white, on a light one black, as drawing.annotate
    writes it; the box and the label's ground are the colour itself."""
    import json

    from playwright.sync_api import sync_playwright

    executable = chromium()
    args = grace_hopper_camera(tmp_path)

    def recoloured(route):
        answer = route.fetch().json()
        answer["colours"] = {name: colour for name in answer["colours"]}
        route.fulfill(body=json.dumps(answer), content_type="application/json")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=args)
        page = browser.new_page()
        page.route("**/api/health", recoloured)
        page.goto(server)
        page.click("#camera")
        page.wait_for_function(BARS_HOLD_A_FACE, timeout=60000)
        page.wait_for_timeout(300)
        white, black = page.evaluate(OVERLAY_INK)
        browser.close()
    written, other = (white, black) if ink == "white" else (black, white)
    assert written > 30 and other < written / 5, (white, black)
