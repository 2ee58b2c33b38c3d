"""The page's speed, as a user sees it: serve.py on a free loopback port, the
page in headless Chromium with a fake camera showing a photo, in each mode
(in the browser, then ?mode=server). Per mode it prints how long the page
takes to be ready (models loaded), the first result after the camera button,
and the page's own rate line (frames/s over its last 3 s), sampled once a
second for --seconds. Needs Playwright, Debian's Chromium and, for the
in-browser mode, npm ci's onnxruntime-web."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

from ferkit.programs import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # Where serve.py is.

# True once the bars show a face's probabilities (they sum to 1; with no face, to 0).
BARS_HOLD_A_FACE = """() => [...document.querySelectorAll('#bars li > span:last-child')]
    .reduce((s, e) => s + parseFloat(e.textContent), 0) > 0.9"""

# What the page's mode line says once each mode is ready.
READY = {"browser": "analysed in this browser", "server": "go to the server"}


def write_y4m(path, rgb, frames=20, side=640):
    """A camera video for Chromium's fake capture device: the photo, padded square."""
    import cv2

    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    small = cv2.resize(rgb, (int(width * scale) // 2 * 2, int(height * scale) // 2 * 2))
    canvas = np.full((side, side, 3), 90, np.uint8)
    y, x = (side - small.shape[0]) // 2, (side - small.shape[1]) // 2
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    yuv = cv2.cvtColor(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{side} H{side} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + yuv)


def fake_camera_flags(video):
    """Chromium's flags for a fake camera that plays the .y4m file video."""
    return ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(extra=()):
    """serve.py on a free loopback port; returns (process, url) once it answers."""
    port = free_port()
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "serve.py"), "--port", str(port), *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(url + "/api/health", timeout=1)
            return process, url
        except OSError:
            if process.poll() is not None:
                raise cli.UsageError(f"page: serve.py did not start: {process.stdout.read().strip()[-300:]}")
            time.sleep(0.25)
    process.terminate()
    raise cli.UsageError("page: serve.py did not answer /api/health within 60 s")


def measure_mode(browser, url, mode, seconds):
    """One mode's figures: (ready s, first result s, the sampled rate lines, the mode line)."""
    page = browser.new_page()
    try:
        start = time.perf_counter()
        page.goto(url + ("/?mode=server" if mode == "server" else "/"))
        page.wait_for_function("(text) => document.querySelector('#mode').textContent.includes(text)"
                               " || document.querySelector('#mode').textContent.includes('failed')",
                               arg=READY[mode], timeout=120_000)
        ready = time.perf_counter() - start
        mode_line = page.inner_text("#mode")
        if READY[mode] not in mode_line:
            return ready, None, [], mode_line
        start = time.perf_counter()
        page.click("#camera")
        page.wait_for_function(BARS_HOLD_A_FACE, timeout=60_000)
        first = time.perf_counter() - start
        page.wait_for_timeout(3000)  # The rate line covers the last 3 s: let it fill.
        lines = []
        for _ in range(max(1, int(seconds))):
            page.wait_for_timeout(1000)
            lines.append(page.inner_text("#rate"))
        return ready, first, lines, mode_line
    finally:
        page.close()


def frames_per_second(line):
    """The figure in the page's rate line, '17.7 frames/s, 37 ms a frame (...)'."""
    return float(line.split(" frames/s")[0])


def bench_page(args):
    from matplotlib import cbook

    from ferkit.vision.images import read_image

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise cli.UsageError("page: no chromium here (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise cli.UsageError("page: Playwright is not installed (pip install -r requirements.txt)") from None
    photo = args.photo or cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    process, url = start_server(["--model", args.serve_model] if args.serve_model else [])
    try:
        with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
            video = os.path.join(folder, "camera.y4m")
            write_y4m(video, read_image(photo))
            browser = p.chromium.launch(executable_path=executable, args=fake_camera_flags(video))
            print(f"page: headless Chromium, fake camera showing {os.path.basename(photo)}, {args.seconds:g} s a mode, "
                  f"model {args.serve_model or 'serve.py default'}")
            for mode in ("browser", "server"):
                ready, first, lines, mode_line = measure_mode(browser, url, mode, args.seconds)
                if first is None:
                    print(f"  {mode:8s} not available: {mode_line}")
                    continue
                rates = [frames_per_second(line) for line in lines]
                print(f"  {mode:8s} ready {ready:.2f} s, first result {first:.2f} s after the camera button, "
                      f"{np.median(rates):.1f} frames/s (median of {len(rates)}, {min(rates):.1f}-{max(rates):.1f}); "
                      f"last: {lines[-1]}")
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
