"""Inference benchmarks: predict.py end to end, emotions.py on a photo and a
video, ONNX Runtime against TensorFlow, a .keras model against its ONNX copy,
a running serve.py under load, the shift benchmark and two models compared
(faces in pictures: bench_faces.py). Each prints figures; `bench.py` is the
command line."""
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

from ferkit.programs import cli
from ferkit.data import fer2013
from benchmarks.bench_training import synthetic_faces
from ferkit.infer.inference import load_for_script

# The repository root, where the scripts a benchmark runs are.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench_predict(args):
    with tempfile.TemporaryDirectory() as folder:
        for extra in (["--tta", "none"], ["--tta", "flip"], ["--model", args.model, "--tta", "flip"]):
            command = [sys.executable, os.path.join(ROOT, "predict.py"), "--model", args.model, *extra,
                       "--test", args.test,
                       "--out", os.path.join(folder, "s.csv")]
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            print(f"predict.py {' '.join(extra)}: {time.perf_counter() - start:.1f} s end to end")

def bench_emotions(args):
    """emotions.py end to end: a 1-megapixel photo with one face, and a
    1280x720 video with one face (every frame), against its start-up."""
    import cv2
    from matplotlib import cbook

    from ferkit.vision.images import read_image

    face = read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    with tempfile.TemporaryDirectory() as folder:
        photos = os.path.join(folder, "photos")
        os.makedirs(photos)
        for i in range(args.photos):
            canvas = np.full((866, 1155, 3), 200, np.uint8)  # 1.0 megapixel.
            x = 100 + (17 * i) % 500  # Each photo a little different.
            canvas[100:700, x : x + 512] = face
            cv2.imwrite(os.path.join(photos, f"{i:03d}.jpg"), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        video = os.path.join(folder, "clip.mp4")
        writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 30, (1280, 720))
        for i in range(args.frames):
            canvas = np.full((720, 1280, 3), 180, np.uint8)
            small = cv2.resize(face, (430, 504))
            x = 200 + 3 * (i % 200)  # Walking right; back to the left every 200 frames (a cut).
            canvas[100:604, x : x + 430] = small
            writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        writer.release()

        for model in (args.model, args.onnx):
            def seconds(*paths):
                """(end to end, the files alone): the second is emotions.py's own
                figure, taken after its start-up (its last line)."""
                start = time.perf_counter()
                done = subprocess.run([sys.executable, os.path.join(ROOT, "emotions.py"), *paths, "--model", model],
                                      check=True, capture_output=True, text=True)
                files = re.search(r"face\(s\) in \d+ file\(s\), ([0-9.]+) s$", done.stdout.strip())
                return time.perf_counter() - start, float(files.group(1))

            # The start-up varies by a second or more between runs: take the faster of two.
            one = min(seconds(os.path.join(photos, "000.jpg"))[0] for _ in range(2))
            many, photo_seconds = seconds(photos)
            clip, clip_seconds = seconds(video)
            # What the files alone took, as emotions.py measures it: the start-up
            # (TensorFlow's import, a first call's tracing) is not subtracted from
            # a second run that may have paid it differently.
            print(f"emotions, {os.path.basename(model)}: one photo {one:.2f} s end to end (start-up included; "
                  f"target with ONNX <= 1.5); {args.photos} photos {many:.1f} s")
            print(f"  per 1-megapixel photo, one face   {1000 * photo_seconds / args.photos:7.0f} ms  (target <= 50)")
            print(f"  1280x720 video, {args.frames} frames       {clip:7.1f} s end to end -> "
                  f"{args.frames / max(clip_seconds, 0.01):.1f} frames/s after start-up (target >= 60)")


def bench_runtimes(args):
    """ONNX Runtime against TensorFlow on the same faces: images/s of one
    view in batches of 256, TensorFlow in float32 and in the best precision
    this machine has, and each one's start-up to the first prediction in a
    fresh process (imports, loading, the first batch)."""
    from ferkit.nets import precision
    from ferkit.infer.inference import OnnxModel, Predictor

    faces, _ = synthetic_faces(args.faces)
    first = "import sys, numpy as np; from ferkit.infer.inference import Predictor, load_for_script; " \
            "m = load_for_script(sys.argv[1], sys.argv[2]); Predictor([m])(np.zeros((1, 48, 48, 1), np.uint8))"
    best = precision.resolve("auto")
    runs = [("ONNX Runtime float32", args.onnx, "float32")] + \
           [(f"TensorFlow {p}", args.model, p) for p in dict.fromkeys(["float32", best])]
    rates = {}
    for name, path, compute in runs:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", first, path, compute], check=True, capture_output=True)
        started = time.perf_counter() - start
        model = OnnxModel(path) if path.endswith(".onnx") else load_for_script(path, compute)
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


def bench_parity(args):
    """The .keras model and its ONNX copy on the validation split of --train
    (PublicTest for a file with a Usage column): top-class agreement and the
    largest probability difference, both in float32, flip TTA as predict.py."""
    from ferkit.infer.inference import OnnxModel, Predictor

    data = fer2013.load_csv(args.train)
    _, val_idx = fer2013.split_indices(data)
    faces = data.images[val_idx]
    keras_p = Predictor([load_for_script(args.model, "float32")], tta="flip")(faces)
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

    from ferkit.vision.images import read_image

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


def public_test_faces(args):
    """(faces, FER+ majority labels, FER+ votes) of the PublicTest rows of
    --train (fer2013.csv) joined to --ferplus: the faces models are chosen on."""
    from ferkit.data import ferplus

    data = fer2013.load_csv(args.train)
    votes = ferplus.load_votes(args.ferplus, data, args.train)
    majority = ferplus.majority_labels(votes)
    rows = ferplus.part_rows(data, majority, "PublicTest")
    return data.images[rows], majority[rows], votes[rows]


def bench_shifts(args):
    """Each --model on FER+'s PublicTest faces (majority labels) as they are,
    under each shift of shifts.SHIFTS, and on the subtle faces: a line each
    with accuracy and mean class recall, then the mean over the shifts. No
    TTA: the shifts are what is measured. A FER2013 model (7 classes) is
    scored on the faces of its classes (FER+'s Contempt left out)."""
    from ferkit.data import ferplus
    from ferkit.data import shifts
    from ferkit.infer.inference import Predictor
    from ferkit.infer.metrics import mean_class_recall

    if not args.ferplus:
        raise cli.UsageError("shifts needs --ferplus fer2013new.csv "
                             "(the labels and the subtle faces come from its votes)")
    faces, labels, votes = public_test_faces(args)
    subtle = shifts.subtle_faces(votes, labels)
    views = {name: change(faces) for name, (_, change) in shifts.SHIFTS.items()}
    neutral = ferplus.FERPLUS_CLASSES.index("Neutral")
    print(f"shifts: {len(faces)} PublicTest faces of {args.train}, FER+ majority labels; {subtle.sum()} subtle "
          f"(an expression, yet >= {shifts.SUBTLE_NEUTRAL_VOTES} of 10 annotators said Neutral); no TTA")
    for path in args.models:
        predict = Predictor(load_models(path, args.precision))
        classes = len(predict.class_names)
        named = labels < classes  # All of FER+'s faces, or a FER2013 model's seven classes.
        truth, hard = labels[named], subtle[named]

        def scores(images):
            predicted = predict(images[named]).argmax(1)
            return np.mean(predicted == truth), mean_class_recall(truth, predicted, classes), predicted

        accuracy, recall, predicted = scores(faces)
        print(f"{model_label(path)} ({classes} classes, {named.sum()} faces)")
        print(f"  {'clean':<9} accuracy {accuracy:.4f}, mean class recall {recall:.4f}  (the faces as they are)")
        # The subtle faces' expression read right (their recall), and how many are called Neutral.
        print(f"  {'subtle':<9} accuracy {np.mean(predicted[hard] == truth[hard]):.4f}, called Neutral "
              f"{np.mean(predicted[hard] == neutral):.4f}  ({hard.sum()} faces)")
        totals = []
        for name, images in views.items():
            accuracy, recall, _ = scores(images)
            totals.append((accuracy, recall))
            print(f"  {name:<9} accuracy {accuracy:.4f}, mean class recall {recall:.4f}  ({shifts.SHIFTS[name][0]})")
        accuracy, recall = np.mean(totals, axis=0)
        print(f"mean over shifts: accuracy {accuracy:.4f}, mean class recall {recall:.4f}")


def load_models(spec, precision):
    """The models of a --model value: one path, or several joined by '+',
    whose mean probabilities the benchmark scores as one model (an ensemble)."""
    return [load_for_script(path, precision) for path in spec.split("+")]


def model_label(spec):
    return "+".join(os.path.basename(path) for path in spec.split("+"))


def bench_compare(args):
    """The first --model against each other one on FER+'s PublicTest faces
    (majority labels, flip TTA, as the selection rule reads them): accuracy
    and mean class recall of each, the share of faces where the two give the
    same top class, and each difference with its 95% interval from a paired
    bootstrap within classes (metrics.paired_bootstrap)."""
    from ferkit.data import ferplus
    from ferkit.infer.inference import Predictor
    from ferkit.infer.metrics import mean_class_recall, paired_bootstrap

    if not args.ferplus or len(args.models) < 2:
        raise cli.UsageError("compare needs --ferplus fer2013new.csv and two --model or more (the first is the reference)")
    faces, labels, _ = public_test_faces(args)
    print(f"compare: {len(faces)} PublicTest faces of {args.train}, FER+ majority labels, flip TTA; "
          f"differences against {model_label(args.models[0])}, 95% intervals of {args.draws} paired draws "
          "within classes")
    predicted = {}
    for path in args.models:
        predict = Predictor(load_models(path, args.precision), "flip")
        if len(predict.class_names) != ferplus.NUM_CLASSES:
            raise cli.UsageError(f"compare: {path} has {len(predict.class_names)} classes, not FER+'s "
                                 f"{ferplus.NUM_CLASSES}")
        predicted[path] = predict(faces).argmax(1)
        print(f"  {model_label(path)}: accuracy {np.mean(predicted[path] == labels):.4f}, mean class recall "
              f"{mean_class_recall(labels, predicted[path], ferplus.NUM_CLASSES):.4f}")
    reference = args.models[0]
    for path in args.models[1:]:
        print(f"{model_label(path)} and {model_label(reference)}: top class the same on "
              f"{np.mean(predicted[path] == predicted[reference]):.2%} of the faces")
        result = paired_bootstrap(labels, predicted[reference], predicted[path], ferplus.NUM_CLASSES, args.draws)
        print(f"{model_label(path)} - {model_label(reference)}: " + "; ".join(
            f"{name} {d:+.4f} [{low:+.4f}, {high:+.4f}], ahead in {ahead:.1%} of draws"
            for name, (d, low, high, ahead) in result.items()))
