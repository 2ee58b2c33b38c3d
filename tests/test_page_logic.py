"""The page's pure functions (static/geometry.js) against ferkit's own, under
Node's test runner: Python writes its answers on shared inputs, and
`node --test tests/js/` checks the JavaScript gives the same. Also what the
page reads its numbers from: /api/health's constants."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from conftest import ROOT

from ferkit.vision import blazeface, drawing
from ferkit.vision.boxes import iou, xywh_iou
from ferkit.vision.page_constants import page_constants
from ferkit.vision.smoothing import Smoother


def python_answers():
    rng = np.random.default_rng(0)
    constants = page_constants()
    answers = {"constants": constants, "anchors": {}, "iou": [], "nms": [], "tiles": [], "smoothing": [], "ink": {}}
    for name, key in (("full", "full"), ("closeUp", blazeface.CLOSE_UP_MODEL)):
        spec = blazeface.MODELS[key]
        grid = blazeface.anchors(spec["size"], spec["strides"], spec["two_per_cell"])
        picks = [0, 1, len(grid) // 2, len(grid) - 1]
        answers["anchors"][name] = {"count": len(grid), "some": [[k, float(grid[k][0]), float(grid[k][1])] for k in picks]}
    for _ in range(20):
        a, b = (np.sort(rng.uniform(0, 100, (2, 2)), axis=0).T.reshape(-1)[[0, 2, 1, 3]] for _ in range(2))
        answers["iou"].append({"a": a.tolist(), "b": b.tolist(), "value": float(iou(a, [b])[0])})
    for _ in range(5):
        centres = rng.uniform(50, 150, (6, 2))
        sizes = rng.uniform(20, 60, (6, 1))
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
        points = rng.uniform(0, 200, (6, 6, 2))
        scores = rng.uniform(0.5, 1, 6)
        faces = blazeface.weighted_nms(boxes, points, scores)
        answers["nms"].append({"found": [{"box": b.tolist(), "points": p.tolist(), "score": float(s)}
                                         for b, p, s in zip(boxes, points, scores)],
                               "faces": [{"box": b.tolist(), "points": p.tolist()} for b, p, _ in faces]})
    for width, height in ((300, 200), (1280, 720), (4000, 3000), (481, 960)):
        windows = [[x, y] for x, y, _ in blazeface.tiles(width, height, constants["detector"]["tileSide"])]
        answers["tiles"].append({"width": width, "height": height, "windows": windows})
    smoother = Smoother()
    for seconds in (0.0, 0.1, 0.25, 0.7, 5.0):
        p = rng.dirichlet(np.ones(3))
        probabilities = dict(zip(("Happy", "Sad", "Neutral"), p.tolist()))
        smoothed = smoother.update(0, seconds, p)
        answers["smoothing"].append({"probabilities": probabilities, "seconds": seconds,
                                     "smoothed": dict(zip(probabilities, smoothed.tolist()))})
    answers["moved"] = []
    for _ in range(6):
        def face():
            box = rng.integers(0, 400, 2).tolist() + [int(rng.integers(40, 200))] * 2
            return box, rng.uniform(0, 600, (6, 2))
        (box, points), first, now = face(), face(), face()
        moved_box, moved_points = blazeface.moved_with(box, points, first, now)
        answers["moved"].append({"detection": {"box": box, "points": points.tolist()},
                                 "first": {"box": first[0], "points": first[1].tolist()},
                                 "now": {"box": now[0], "points": now[1].tolist()},
                                 "moved": {"box": list(moved_box), "points": moved_points.tolist()}})
    answers["ink"] = {name: "#000" if sum(rgb) > drawing.DARK_INK_ABOVE else "#fff"
                      for name, rgb in drawing.COLOURS.items()}
    return answers


def test_the_two_box_formats_share_one_overlap():
    assert xywh_iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(50 / 150)
    assert xywh_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0
    assert iou((0, 0, 10, 10), [(0, 0, 10, 10), (20, 20, 30, 30)]).tolist() == [1.0, 0.0]


@pytest.mark.skipif(shutil.which("node") is None, reason="no Node.js here")
def test_the_pages_functions_give_pythons_answers(tmp_path):
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(python_answers()))
    result = subprocess.run(["node", "--test", os.path.join("tests", "js")], cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, PAGE_CASES=str(path)), timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# skipped 0" in result.stdout and "# pass 9" in result.stdout


def test_the_server_sends_the_page_its_constants():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    import serve
    from ferkit.programs import cli

    app, _ = serve.build(cli.released_model(cli.EMOTIONS_MODEL, prefer_onnx=True))
    constants = TestClient(app).get("/api/health").json()["constants"]
    assert constants == json.loads(json.dumps(page_constants()))
    assert constants["detector"]["full"]["url"] == "/models/blazeface_full_range.onnx"
    assert constants["smoothing"]["timeConstantMs"] == 300 and constants["tracking"]["minIou"] == 0.3
