"""A local web page: live webcam emotions and photo drop, over the same
detection, crop and model as emotions.py.

    python serve.py                                   # http://127.0.0.1:8000
    python serve.py --model models/fer2013_cnn.onnx --port 8080
    ferkit serve                                      # the same, from an installed ferkit

The browser owns the camera. With an .onnx model and `npm ci` done, the page
runs the detector and the model itself (static/local.js, onnxruntime-web) and
no frame leaves the browser; otherwise, or with ?mode=server, it sends frames
and the server answers each with the faces it finds (the records
emotions.py --json writes). It binds to 127.0.0.1 unless --host says
otherwise. Nothing uploaded is written to disk.

    POST /api/emotions     an image (multipart field `file`, or a raw JPEG/PNG/... body)
    GET  /api/health       the model, its classes, the runtime, the precision, in_browser
    GET  /api/model.onnx   the server's model, for the page    (these three: in-browser only)
    GET  /api/models       the released ONNX models the page can switch to
    GET  /models/NAME.onnx one of them, or the face detector
"""
import functools
import io
import os
import sys
import threading
import time

from ferkit.programs import cli
from ferkit import paths
from ferkit.vision.detectors import DETECTORS
from ferkit.vision.drawing import COLOURS
from ferkit.data.fer2013 import DataError
from ferkit.vision.images import ImageTooLarge, read_image
from ferkit.vision.page_constants import page_constants
from ferkit.infer.reader import EmotionReader

MAX_BODY_BYTES = 10 * 2**20  # 10 MiB: a phone photo is 2-6 MB.
MAX_PIXELS = 50_000_000  # A 50-megapixel photo; anything larger is refused before decoding.
STATIC, ORT_DIST = paths.STATIC_DIR, paths.ORT_DIST  # The page, and its in-browser runtime (see paths.py).
# BlazeFace for the page: the full-range model, and the short-range one for
# its close-up pass (blazeface.CLOSE_UP_MODEL).
BROWSER_DETECTORS = {name: os.path.join(cli.MODELS_DIR, name + ".onnx")
                     for name in ("blazeface_full_range", "blazeface_short_range")}


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--model", default=cli.released_model(cli.EMOTIONS_MODEL, prefer_onnx=True, int8=True),
                   help="saved .keras or .onnx model (default: emotions.py's, the released ONNX copy)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; anything else than 127.0.0.1 "
                                                      "lets other machines use the page")
    p.add_argument("--port", type=int, default=8000, help="port")
    cli.add_tta_flag(p, "flip", ("none", "flip"), help="also classify each face's mirror image")
    p.add_argument("--detector", choices=sorted(DETECTORS), default="blazeface", help="face detector, as emotions.py's")
    cli.add_precision_flag(p)
    return p.parse_args(argv)


class TooLarge(Exception):
    pass


class BadRequest(Exception):
    """A request the server cannot read as an upload at all: HTTP 400."""


async def read_limited(request, limit=MAX_BODY_BYTES):
    """The request body, refusing (TooLarge) past `limit` bytes without
    reading the rest, whatever Content-Length says."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is {int(declared):,} bytes; at most {limit:,} are accepted")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is over {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def image_bytes(request):
    """(bytes, name) of the uploaded image: a multipart `file` field or the raw body."""
    from starlette.requests import Request

    body = await read_limited(request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return body, "upload"

    async def replay():  # Starlette parses the form from a receive channel: give it the bytes read.
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form()
    upload = form.get("file")
    if upload is None or not hasattr(upload, "read"):
        raise BadRequest("a multipart upload needs its image in a field named 'file'")
    return await upload.read(), upload.filename or "upload"


def create_app(reader):
    """The ASGI app: the page, /api/health and /api/emotions over one
    EmotionReader (reader.py), the core every door shares; with an .onnx model_path and onnxruntime-web installed, also
    what the page needs to compute in the browser (/api/model.onnx, the
    detector, /ort/)."""
    import mimetypes

    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool

    # Browsers refuse a module or a WebAssembly file served with the wrong type.
    mimetypes.add_type("text/javascript", ".mjs")
    mimetypes.add_type("application/wasm", ".wasm")
    app = FastAPI(title="Emotions", docs_url=None, redoc_url=None)
    model_path, model_name = reader.model_path, os.path.basename(reader.model_path)
    in_browser = bool(model_path and model_path.lower().endswith(".onnx") and os.path.isdir(ORT_DIST)
                      and all(os.path.isfile(path) for path in BROWSER_DETECTORS.values()))

    @app.middleware("http")
    async def isolate(request, call_next):
        # Cross-origin isolation: what lets onnxruntime-web run WebAssembly threads.
        response = await call_next(request)
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Cross-Origin-Embedder-Policy"] = "require-corp"
        return response
    lock = threading.Lock()  # One detector and one model: one frame at a time.

    def error(status, message):
        return JSONResponse({"error": message}, status_code=status)

    @app.get("/")
    def page():
        return FileResponse(os.path.join(STATIC, "index.html"))

    @app.get("/api/health")
    def health():
        return {"model": model_name, "classes": list(reader.class_names), "runtime": reader.runtime,
                "precision": reader.precision,
                "colours": {c: COLOURS.get(c, (255, 255, 255)) for c in reader.class_names},
                "constants": page_constants(),
                "in_browser": in_browser}

    @app.get("/api/model.onnx")
    def model_file():
        if not in_browser:
            return error(404, "this server runs a model the browser cannot (a .keras file, or no onnxruntime-web: "
                              "run npm ci)")
        return FileResponse(model_path, media_type="application/octet-stream")

    # The released emotion models, for the page's model choice in the browser.
    released = {name: cli.released_model(name, prefer_onnx=True, int8=True) for name in ("ferplus_cnn", "fer2013_cnn")}
    released = {name: path for name, path in released.items() if path.endswith(".onnx") and os.path.isfile(path)}

    @functools.cache
    def released_classes(path):
        # Opening an ONNX session takes a fraction of a second: once per file, not per request.
        from ferkit.infer.inference import OnnxModel

        return list(OnnxModel(path).class_names)

    @app.get("/api/models")
    def released_models():
        if not in_browser:
            return {}
        return {name: {"url": f"/models/{name}.onnx", "classes": released_classes(path)}
                for name, path in released.items()}

    @app.get("/models/{name}.onnx")
    def released_file(name: str):
        """The face detector and the released emotion models, for the page in the browser."""
        files = {**released, **BROWSER_DETECTORS}
        if not in_browser or name not in files:
            return error(404, f"no model file named {name!r}.onnx here")
        return FileResponse(files[name], media_type="application/octet-stream")

    @app.post("/api/emotions")
    async def emotions(request: Request):
        started = time.perf_counter()
        try:
            data, name = await image_bytes(request)
            if not data:
                return error(415, "the request holds no image")
            rgb = read_image(io.BytesIO(data), MAX_PIXELS, name=name)
        except (TooLarge, ImageTooLarge) as e:
            return error(413, str(e))
        except BadRequest as e:
            return error(400, str(e))
        except DataError as e:
            return error(415, str(e))

        # ?photo=1 (a dropped photo): searched as closely as emotions.py
        # searches a photo; camera frames get the detector's one fast pass.
        thorough = request.query_params.get("photo") == "1"

        def analyse():
            with lock:
                return reader.read(rgb, bgr=False, thorough=thorough)

        faces = [dict(r, file=name) for r in await run_in_threadpool(analyse)]
        return {"width": rgb.shape[1], "height": rgb.shape[0], "faces": faces,
                "milliseconds": round(1000 * (time.perf_counter() - started), 1)}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if in_browser:
        app.mount("/ort", StaticFiles(directory=ORT_DIST), name="ort")
    return app


def build(model_path, precision="auto", tta="flip", detector="blazeface"):
    """(app, reader) for a model file; what main and the tests run."""
    reader = EmotionReader(model_path, detector, tta, precision=precision)
    return create_app(reader), reader


def main(argv=None):
    args = parse_args(argv)
    app, _ = build(args.model, args.precision, args.tta, args.detector)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: other machines on the network can use this page "
              f"and its camera frames", file=sys.stderr)
    import uvicorn

    print(f"open http://{args.host}:{args.port}/ in a browser (Ctrl-C stops the server)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")

