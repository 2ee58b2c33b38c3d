"""Benchmarks that print figures: CSV parsing, training throughput, memory.

    python bench.py csv --train data/train.csv      # load_csv vs pandas' C parser
    python bench.py throughput                      # project loop vs bare model.fit, FLOP rate
    python bench.py memory --train data/train.csv --test data/test.csv
    python bench.py predict --test data/test.csv --model models/cnn.keras
    python bench.py epochs --train data/train.csv --epochs 3   # seconds per epoch (e.g. on a GPU box)
    python bench.py precision --train data/train.csv            # train_cnn.py float32 vs bfloat16 images/s
    python bench.py breakdown --precision bfloat16              # where an epoch's seconds go
    python bench.py crop --train data/train.csv --detector haar # detector box vs FER2013's crop
    python bench.py detectors --train data/train.csv            # Haar vs MTCNN on pasted real faces
    python bench.py emotions                                    # emotions.py, Keras and ONNX: photo ms, video frames/s
    python bench.py runtimes --faces 4096                       # ONNX Runtime vs TensorFlow: images/s, start-up
    python bench.py parity --train data/train.csv               # a .keras model vs its ONNX copy on validation
    python bench.py serve --clients 4 --seconds 20              # a running serve.py: frames/s, p50/p95 latency

Timings on shared machines are noisy: compare the ratios printed by one run.
"""
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import cli
import fer2013
import runlog


def plain_copy(path, folder):
    """The CSV uncompressed, so both parsers read the same bytes from disk."""
    if not path.endswith(".gz"):
        return path
    target = os.path.join(folder, os.path.basename(path)[:-3])
    with gzip.open(path, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 24)
    return target


def bench_csv(args):
    import pandas as pd

    with tempfile.TemporaryDirectory() as folder:
        path = plain_copy(args.train, folder)
        # pandas reads the same values as 2,305 uint8 columns: the same file
        # with its one comma turned into a space (same size, same digits).
        spaced = os.path.join(folder, "spaced.csv")
        with open(path, "rb") as src, open(spaced, "wb") as dst:
            dst.write(src.read().replace(b",", b" "))
        timings = {"load_csv": [], "pandas": []}
        for _ in range(args.repeat):
            start = time.perf_counter()
            data = fer2013.load_csv(path, cache=False)
            timings["load_csv"].append(time.perf_counter() - start)
            start = time.perf_counter()
            frame = pd.read_csv(spaced, sep=" ", header=None, skiprows=1, dtype=np.uint8, engine="c")
            timings["pandas"].append(time.perf_counter() - start)
        assert np.array_equal(frame.to_numpy()[:, 1:].reshape(data.images.shape), data.images)
        fer2013.load_csv(path)  # Fill the cache, then time a cached load.
        start = time.perf_counter()
        fer2013.load_csv(path)
        cached = time.perf_counter() - start
        size = os.path.getsize(path) / 2**20
    ours, theirs = min(timings["load_csv"]), min(timings["pandas"])
    print(f"csv: {len(data)} rows, {size:.0f} MB, best of {args.repeat}")
    print(f"  load_csv (cache=False)        {ours:6.2f} s")
    print(f"  pandas C parser, 2305 uint8   {theirs:6.2f} s")
    print(f"  ratio load_csv / pandas       {ours / theirs:6.2f}  (target <= 1.0)")
    print(f"  load_csv, cached              {cached:6.3f} s")


def model_flops_per_image(model):
    """Forward multiply-adds x 2 for convolutions and dense layers."""
    import keras

    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            h, w, c_out = layer.output.shape[1:]
            k = np.prod(layer.kernel_size) * layer.input.shape[-1]
            flops += 2 * h * w * c_out * k
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.input.shape[-1] * layer.units
    return flops


def matmul_peak(dtype="float32"):
    import tensorflow as tf

    a = tf.cast(tf.random.normal((2048, 2048)), dtype)
    step = tf.function(lambda a: tf.matmul(a, a))
    step(a).numpy()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < 3:
        step(a).numpy()
        n += 1
    return 2 * 2048**3 * n / (time.perf_counter() - start)


class EpochTimer:
    def __init__(self):
        import keras

        timer = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                timer.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                timer.seconds.append(time.perf_counter() - timer.start)

        self.seconds = []
        self.callback = Callback()


def bench_throughput(args):
    import keras

    import precision
    import training
    from models import stock_layers

    images, labels = synthetic_faces(args.images)
    data = fer2013.Dataset(images, labels, np.arange(len(labels)), None)
    recipe = training.PRESETS[args.preset]
    compute = precision.resolve(args.precision)
    compiled = lambda **kw: training.compile_model(args.model_arch, recipe, len(images) // args.batch_size, **kw)

    # Bare: stock Keras layers in float32, in-memory float32 arrays, no augmentation, no callbacks of ours.
    x, y = images.astype("float32"), keras.utils.to_categorical(labels, 7)
    bare, timer = compiled(fused=False), EpochTimer()
    bare.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, callbacks=[timer.callback], verbose=0)
    bare_rate = len(images) / min(timer.seconds[1:])
    # The project's loop: fused BatchNorm in --precision, uint8 tf.data pipeline, augmentation,
    # resume, log and checkpoint callbacks.
    with tempfile.TemporaryDirectory() as folder:
        model, timer = compiled(fused=True, compute=compute), EpochTimer()
        inference = stock_layers(model)
        callbacks = training.make_callbacks(model, inference, os.path.join(folder, "m.keras"),
                                            os.path.join(folder, "log.csv"), os.path.join(folder, "resume"))
        ds = training.make_dataset(data, args.batch_size, shuffle=True, augment=recipe["augment"])
        training.fit(model, ds, epochs=args.epochs, callbacks=[timer.callback, *callbacks], verbose=0)
        ours_rate = len(images) / min(timer.seconds[1:])
    flops = model_flops_per_image(model) * 3  # Forward, and backward at about twice that.
    peak = matmul_peak(compute)
    print(f"throughput: {args.model_arch}, batch {args.batch_size}, {len(images)} images, best epoch after the first")
    print(f"  bare model.fit, float32 arrays     {bare_rate:7.1f} images/s")
    print(f"  project loop, {compute:<8}, augmented {ours_rate:7.1f} images/s")
    print(f"  ratio project / bare               {ours_rate / bare_rate:7.3f}  (target >= 0.95)")
    print(f"  training FLOP rate                 {flops * ours_rate / 1e9:7.1f} GFLOP/s "
          f"({flops / 1e9:.2f} GFLOP per image)")
    print(f"  {compute} matmul peak (2048x2048)   {peak / 1e9:7.1f} GFLOP/s  -> {flops * ours_rate / peak:.0%} of peak")


def synthetic_faces(n):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, 48, 48, 1), dtype=np.uint8), rng.integers(0, 7, size=n).astype(np.int8)


def peak_rss_of(command):
    """Peak resident memory (MiB) of a command, measured by a fresh parent."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True); "
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True)
    code, kib = out.stdout.split()
    return int(code), int(kib) / 1024, time.perf_counter() - start


def bench_memory(args):
    with tempfile.TemporaryDirectory() as folder:
        model = os.path.join(folder, "m.keras")
        train = [sys.executable, "train_cnn.py", "--train", args.train, "--epochs", "1", "--out", model,
                 "--curves", "", "--preset", "fast"]
        code, mib, seconds = peak_rss_of(train)
        print(f"memory: train_cnn.py, 1 epoch on {args.train}: peak RSS {mib:.0f} MiB (target <= 3072), "
              f"exit {code}, {seconds:.0f} s")
        predict = [sys.executable, "predict.py", "--model", model, "--test", args.test, "--out",
                   os.path.join(folder, "s.csv")]
        code, mib, seconds = peak_rss_of(predict)
        print(f"memory: predict.py on {args.test}: peak RSS {mib:.0f} MiB (target <= 2048), exit {code}, {seconds:.1f} s")


def bench_predict(args):
    with tempfile.TemporaryDirectory() as folder:
        for extra in (["--tta", "none"], ["--tta", "flip"], ["--model", args.model, "--tta", "flip"]):
            command = [sys.executable, "predict.py", "--model", args.model, *extra, "--test", args.test,
                       "--out", os.path.join(folder, "s.csv")]
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            print(f"predict.py {' '.join(extra)}: {time.perf_counter() - start:.1f} s end to end")


def bench_epochs(args):
    """Seconds per epoch of the real training command on real-size data: the
    one-command check for a GPU box (3 epochs of FER2013 take a few minutes on
    one GPU, about 7 on 2 CPU cores)."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        out, log = os.path.join(folder, "m.keras"), os.path.join(folder, "log.csv")
        command = [sys.executable, "train_cnn.py", "--preset", "fast", "--train", args.train, "--epochs", str(args.epochs),
                   "--out", out, "--log", log, "--curves", ""]
        subprocess.run(command, check=True, capture_output=True)
        import training

        seconds = [float(r["seconds"]) for r in runlog.read_log(log)]
    devices = ", ".join(d.name for d in tf.config.list_physical_devices("GPU")) or "CPU only"
    print(f"epochs: train_cnn.py --preset fast on {args.train} ({devices})")
    print("  seconds per epoch: " + ", ".join(f"{s:.1f}" for s in seconds) + " (the first includes tracing)")


def bench_precision(args):
    """train_cnn.py --limit 6000 --epochs 2 in float32 then bfloat16, one
    after the other: images/s of the last epoch (the first pays for tracing)."""
    from models import build_cnn

    data = fer2013.load_csv(args.train, limit=args.limit)
    train_faces = len(fer2013.split_indices(data)[0])  # train_cnn.py's split.
    rates = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in ("float32", "bfloat16"):
            log = os.path.join(folder, f"{name}.log.csv")
            command = [sys.executable, "train_cnn.py", "--train", args.train, "--limit", str(args.limit), "--epochs",
                       str(args.epochs), "--precision", name, "--out", os.path.join(folder, f"{name}.keras"),
                       "--log", log, "--curves", ""]
            subprocess.run(command, check=True, capture_output=True)
            import training

            rows = runlog.read_log(log)
            rates[name] = train_faces / float(rows[-1]["seconds"])
            print(f"precision: train_cnn.py --precision {name}: epoch {rows[-1]['epoch']} {float(rows[-1]['seconds']):.1f} s, "
                  f"{rates[name]:.0f} images/s (training, validation and checkpoint included)")
    flops = model_flops_per_image(build_cnn()) * 3  # Forward, and backward at about twice that.
    peak = matmul_peak("bfloat16")
    print(f"  ratio bfloat16 / float32           {rates['bfloat16'] / rates['float32']:7.2f}")
    print(f"  bfloat16 training FLOP rate        {flops * rates['bfloat16'] / 1e9:7.1f} GFLOP/s, "
          f"{flops * rates['bfloat16'] / peak:.0%} of the bfloat16 matmul peak ({peak / 1e9:.0f} GFLOP/s)")


def pasted_faces(data, count, rng, canvas=(720, 1280), per_image=3):
    """Composite photos of real FER2013 faces, enlarged 3-5x and pasted on a
    smooth random background: [(rgb, [(box, index)])], box as pasted."""
    import cv2

    images, picks = [], rng.permutation(len(data))[:count]
    for start in range(0, count, per_image):
        h, w = canvas
        yy, xx = np.mgrid[0:h, 0:w]
        background = 90 + 60 * np.sin(xx / rng.uniform(80, 300) + rng.uniform(0, 6)) * np.cos(yy / rng.uniform(80, 300))
        rgb = np.repeat(background[..., None], 3, axis=2) * rng.uniform(0.7, 1.2, size=3)
        placed = []
        for slot, index in enumerate(picks[start : start + per_image]):
            side = int(48 * rng.uniform(3, 5))
            x = int(slot * w / per_image + rng.uniform(10, w / per_image - side - 10))
            y = int(rng.uniform(10, h - side - 10))
            face = cv2.resize(data.images[index, :, :, 0], (side, side), interpolation=cv2.INTER_CUBIC)
            rgb[y : y + side, x : x + side] = face[..., None]
            placed.append(((x, y, side, side), index))
        images.append((np.clip(rgb, 0, 255).astype(np.uint8), placed))
    return images


def bench_crop(args):
    """Where the detector's box lies in FER2013's own 48x48 crops: each face is
    padded (edge pixels repeated) and enlarged 4x, then detected."""
    import cv2

    from faces import DETECTORS

    data = fer2013.load_csv(args.train)
    detector = DETECTORS[args.detector](detect_side=10_000)
    rng, scale, pad = np.random.default_rng(0), 4, 48
    ratios, dx, dy, chosen = [], [], [], rng.choice(len(data), args.faces, replace=False)
    for index in chosen:
        big = cv2.copyMakeBorder(data.images[index, :, :, 0], pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        big = cv2.resize(big, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        boxes = detector(np.repeat(big[..., None], 3, axis=2))
        if boxes:
            x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
            side = max(w, h) / scale
            ratios.append(48 / side)
            dx.append(((x + w / 2) / scale - pad - 24) / side)
            dy.append(((y + h / 2) / scale - pad - 24) / side)
    r = np.array(ratios)
    print(f"crop: {args.detector} on {args.faces} FER2013 faces from {args.train}: found {len(r)}")
    print(f"  FER2013 crop side / box side      median {np.median(r):.3f}, interquartile {np.percentile(r, 25):.3f}-"
          f"{np.percentile(r, 75):.3f}")
    print(f"  box centre - crop centre (sides)  x {np.median(dx):+.3f}, y {np.median(dy):+.3f}")


def bench_detectors(args):
    """Both detectors on composite photos of real faces: faces found, false
    positives, milliseconds per 1280x720 image, and the emotion accuracy of
    the whole pipeline against the model on the CSV faces themselves."""
    import cli
    from faces import CROP_SCALE, DETECTORS, crop_face, iou, to_gray
    from inference import Predictor

    data = fer2013.load_csv(args.train)
    _, val_idx = fer2013.split_indices(data)
    val = data.subset(val_idx)
    photos = pasted_faces(val, args.faces, np.random.default_rng(1))
    predict = Predictor([cli.load_model(args.model, "auto")], tta="flip")
    indexes = [i for _, placed in photos for _, i in placed]
    direct = predict(val.images[indexes]).argmax(1) == val.labels[indexes]
    direct_by_index = dict(zip(indexes, direct.tolist()))
    print(f"detectors: {len(indexes)} validation faces pasted into {len(photos)} 1280x720 images; the model on the "
          f"48x48 faces themselves: accuracy {direct.mean():.4f}")
    for name in args.detector_list.split(","):
        detector = DETECTORS[name]()
        found = false = correct = same = 0
        seconds = 0.0
        for rgb, placed in photos:
            start = time.perf_counter()
            boxes = detector(rgb)
            seconds += time.perf_counter() - start
            matched = set()
            for box in boxes:
                overlaps = [(iou(box, truth), i) for truth, i in placed]
                best, index = max(overlaps)
                if best < 0.3 or index in matched:
                    false += 1
                    continue
                matched.add(index)
                face = crop_face(to_gray(rgb), box, CROP_SCALE[name])
                correct += int(predict(face[None]).argmax() == val.labels[index])
                same += int(direct_by_index[index])
            found += len(matched)
        print(f"  {name:<6} found {found}/{len(indexes)}, false positives {false}, "
              f"{1000 * seconds / len(photos):.0f} ms per image; emotion accuracy on the faces found: "
              f"{correct / max(1, found):.4f} through the pipeline, {same / max(1, found):.4f} on their 48x48 originals")


def bench_emotions(args):
    """emotions.py end to end: a 1-megapixel photo with one face, and a
    1280x720 video with one face (every frame), against its start-up."""
    import cv2
    from matplotlib import cbook

    from faces import read_image

    face = read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    with tempfile.TemporaryDirectory() as folder:
        photos = os.path.join(folder, "photos")
        os.makedirs(photos)
        for i in range(args.photos):
            canvas = np.full((866, 1155, 3), 200, np.uint8)  # 1.0 megapixel.
            x = 100 + 20 * i
            canvas[100:700, x : x + 512] = face
            cv2.imwrite(os.path.join(photos, f"{i:03d}.jpg"), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        video = os.path.join(folder, "clip.mp4")
        writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 30, (1280, 720))
        for i in range(args.frames):
            canvas = np.full((720, 1280, 3), 180, np.uint8)
            small = cv2.resize(face, (430, 504))
            x = 200 + 3 * i
            canvas[100:604, x : x + 430] = small
            writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        writer.release()

        for model in (args.model, args.onnx):
            def seconds(*paths):
                start = time.perf_counter()
                subprocess.run([sys.executable, "emotions.py", *paths, "--model", model], check=True,
                               capture_output=True)
                return time.perf_counter() - start

            one = seconds(os.path.join(photos, "000.jpg"))
            many = seconds(photos)
            clip = seconds(video)
            per_photo = (many - one) / (args.photos - 1)
            print(f"emotions, {os.path.basename(model)}: one photo {one:.2f} s end to end (start-up included; "
                  f"target with ONNX <= 1.5); {args.photos} photos {many:.1f} s")
            print(f"  per 1-megapixel photo, one face   {1000 * per_photo:7.0f} ms  (target <= 50)")
            print(f"  1280x720 video, {args.frames} frames       {clip:7.1f} s end to end -> "
                  f"{args.frames / (clip - one + per_photo):.1f} frames/s after start-up (target >= 30)")


def bench_parity(args):
    """The .keras model and its ONNX copy on the validation split of --train
    (PublicTest for a file with a Usage column): top-class agreement and the
    largest probability difference, both in float32, flip TTA as predict.py."""
    from inference import OnnxModel, Predictor

    data = fer2013.load_csv(args.train)
    _, val_idx = fer2013.split_indices(data)
    faces = data.images[val_idx]
    keras_p = Predictor([cli.load_model(args.model, "float32")], tta="flip")(faces)
    onnx_p = Predictor([OnnxModel(args.onnx)], tta="flip")(faces)
    agree = np.mean(keras_p.argmax(1) == onnx_p.argmax(1))
    print(f"parity: {os.path.basename(args.model)} vs {os.path.basename(args.onnx)} on {len(faces)} validation faces: "
          f"top class the same on {agree:.4%} (target >= 99.9%), largest probability difference "
          f"{np.abs(keras_p - onnx_p).max():.1e} (target <= 2e-3)")


def bench_serve(args):
    """A running serve.py under load: --clients threads post a 640x480 camera
    frame (a real face) for --seconds, each waiting for its answer as the
    page does; frames/s and latency percentiles, loopback only."""
    import threading
    import urllib.error
    import urllib.request

    import cv2
    from matplotlib import cbook

    from faces import read_image

    if not args.url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        raise cli.UsageError(f"--url {args.url}: the load test only sends to this machine (http://127.0.0.1:PORT)")
    face = read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[40:440, 200:541] = cv2.resize(face, (341, 400))
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
    latencies, errors, stop = [], [], time.perf_counter() + args.seconds

    def client():
        while time.perf_counter() < stop:
            request = urllib.request.Request(args.url + "/api/emotions", data=jpeg,
                                             headers={"Content-Type": "image/jpeg"})
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                latencies.append(time.perf_counter() - start)
            except (urllib.error.URLError, OSError) as e:
                errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    print(f"serve: {args.clients} clients, {wall:.1f} s: {len(latencies) / wall:.1f} frames/s, "
          f"p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, {len(errors)} errors")


def bench_runtimes(args):
    """ONNX Runtime against TensorFlow on the same faces: images/s of one
    view in batches of 256, TensorFlow in float32 and in the best precision
    this machine has, and each one's start-up to the first prediction in a
    fresh process (imports, loading, the first batch)."""
    import precision
    from inference import OnnxModel, Predictor

    faces, _ = synthetic_faces(args.faces)
    first = "import sys, numpy as np; sys.path.insert(0, '.'); import cli; from inference import Predictor; " \
            "m = cli.load_model(sys.argv[1], sys.argv[2]); Predictor([m])(np.zeros((1, 48, 48, 1), np.uint8))"
    best = precision.resolve("auto")
    runs = [("ONNX Runtime float32", args.onnx, "float32")] + \
           [(f"TensorFlow {p}", args.model, p) for p in dict.fromkeys(["float32", best])]
    rates = {}
    for name, path, compute in runs:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", first, path, compute], check=True, capture_output=True)
        started = time.perf_counter() - start
        model = OnnxModel(path) if path.endswith(".onnx") else cli.load_model(path, compute)
        predictor = Predictor([model])
        predictor(faces[:256])  # Warm up (tracing, memory pools).
        start = time.perf_counter()
        predictor(faces)
        rates[name] = len(faces) / (time.perf_counter() - start)
        print(f"runtimes: {name:<22} {rates[name]:7.0f} images/s; start-up to the first prediction {started:5.2f} s")
    onnx_rate = rates["ONNX Runtime float32"]
    for name, rate in rates.items():
        if name.startswith("TensorFlow"):
            print(f"  ONNX Runtime / {name}: {onnx_rate / rate:.2f}x")


def bench_breakdown(args):
    """Where an epoch of train_cnn.py goes, in --precision, scaled to FER2013's
    25,837 training and 2,872 validation faces: the bare train step (one
    batch, already a tensor, in a loop), the tf.data pipeline with
    augmentation on its own (it overlaps the step, on the same two cores), a
    whole epoch of the project's fit, the validation pass, the best-model save
    and the resume checkpoint."""
    import tensorflow as tf

    import precision
    import training
    from models import stock_layers

    compute = precision.resolve(args.precision)
    images, labels = synthetic_faces(args.images)
    data = fer2013.Dataset(images, labels, np.arange(len(labels)), None)
    recipe = training.PRESETS["fast"]
    batch = args.batch_size
    model = training.compile_model("cnn", recipe, len(images) // batch, fused=True, compute=compute)
    x, y = tf.constant(images[:batch].astype("float32")), tf.one_hot(labels[:batch], 7)
    for _ in range(3):
        model.train_on_batch(x, y)
    start, steps = time.perf_counter(), max(4, args.images // batch)
    for _ in range(steps):
        model.train_on_batch(x, y)
    step = (time.perf_counter() - start) / (steps * batch)
    dataset = training.make_dataset(data, batch, shuffle=True, augment=recipe["augment"])
    for _ in dataset:
        pass
    start = time.perf_counter()
    for _ in dataset:
        pass
    pipeline = (time.perf_counter() - start) / len(images)
    timer = EpochTimer()
    training.fit(model, dataset, epochs=args.epochs, callbacks=[timer.callback], verbose=0)
    fit = min(timer.seconds[1:]) / len(images)
    val = training.make_dataset(data, 512)
    model.evaluate(val, verbose=0)
    start = time.perf_counter()
    model.evaluate(val, verbose=0)
    validate = (time.perf_counter() - start) / len(images)
    with tempfile.TemporaryDirectory() as folder:
        inference = stock_layers(model)
        start = time.perf_counter()
        inference.set_weights(model.get_weights())
        inference.save(os.path.join(folder, "m.keras"))
        save = time.perf_counter() - start
        start = time.perf_counter()
        model.save_weights(os.path.join(folder, "resume.weights.h5"))
        backup = time.perf_counter() - start
    n_train, n_val = 25_837, 2_872
    print(f"breakdown: one FER2013 epoch in {compute}, batch {batch} (measured on {len(images)} images)")
    rows = [("train step alone (one batch, in a loop)", step * n_train),
            ("augmentation pipeline alone", pipeline * n_train),
            ("fit: pipeline + step, overlapped", fit * n_train),
            ("validation pass", validate * n_val), ("best-model save (when it improves)", save),
            ("resume checkpoint", backup)]
    for name, seconds in rows:
        print(f"  {name:<42} {seconds:6.1f} s")
    total = (fit * n_train) + validate * n_val + save + backup
    print(f"  {'epoch (fit + validation + saves)':<42} {total:6.1f} s -> {n_train / total:.0f} training images/s; "
          f"the pipeline costs {fit / step - 1:+.0%} over the bare step")


def main(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("what", choices=["csv", "throughput", "memory", "predict", "epochs", "precision", "crop",
                                    "detectors", "emotions", "breakdown", "runtimes", "parity", "serve"])
    p.add_argument("--train", default="data/train.csv", help="training CSV")
    p.add_argument("--test", default="data/test.csv", help="test CSV")
    p.add_argument("--model", default=cli.RELEASED_MODEL,
                   help="Keras model for the predict, detectors, emotions and runtimes benchmarks")
    p.add_argument("--onnx", default=cli.released_model(prefer_onnx=True),
                   help="ONNX model for the emotions and runtimes benchmarks")
    p.add_argument("--repeat", type=int, default=3, help="csv: timings per parser")
    p.add_argument("--images", type=int, default=3072, help="throughput: images per epoch")
    p.add_argument("--epochs", type=int, default=3, help="throughput and epochs: epochs (the first is not timed)")
    p.add_argument("--batch-size", type=int, default=128, help="throughput: batch size")
    p.add_argument("--preset", default="fast", help="throughput: recipe (optimizer, augmentation)")
    p.add_argument("--arch", dest="model_arch", default="cnn", choices=["cnn", "dnn"], help="throughput: architecture")
    p.add_argument("--limit", type=int, default=6000, help="precision: training rows")
    p.add_argument("--precision", default="float32", help="throughput and breakdown: precision of the project loop")
    p.add_argument("--detector", default="haar", help="crop: detector")
    p.add_argument("--detector-list", default="haar,mtcnn", help="detectors: detectors to compare")
    p.add_argument("--faces", type=int, default=600, help="crop and detectors: faces")
    p.add_argument("--photos", type=int, default=11, help="emotions: photos")
    p.add_argument("--frames", type=int, default=150, help="emotions: video frames")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="serve: a running serve.py")
    p.add_argument("--clients", type=int, default=4, help="serve: concurrent clients")
    p.add_argument("--seconds", type=float, default=20, help="serve: how long to send frames")
    args = p.parse_args(argv)
    {"csv": bench_csv, "throughput": bench_throughput, "memory": bench_memory, "predict": bench_predict,
     "epochs": bench_epochs, "precision": bench_precision, "crop": bench_crop, "detectors": bench_detectors,
     "emotions": bench_emotions, "breakdown": bench_breakdown, "runtimes": bench_runtimes,
     "parity": bench_parity, "serve": bench_serve}[args.what](args)


if __name__ == "__main__":
    cli.run(main)
