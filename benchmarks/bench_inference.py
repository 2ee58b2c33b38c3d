"""Inference benchmarks: predict.py end to end, where a detector's box lies
in FER2013's crop, Haar against MTCNN, emotions.py on a photo and a video,
ONNX Runtime against TensorFlow, a .keras model against its ONNX copy, and a
running serve.py under load. Each prints figures; `bench.py` is the command line."""
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

from ferkit import cli
from ferkit import fer2013
from benchmarks.bench_training import synthetic_faces
from ferkit.inference import load_for_script

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


def bench_crop(args):
    """faces.calibrate_crop on --faces FER2013 faces: the figures CROP_SCALE
    is set from."""
    from ferkit.crops import calibrate_crop

    data = fer2013.load_csv(args.train)
    train_idx, _ = fer2013.split_indices(data)  # Training faces only: the held-out ones stay out of every choice.
    chosen = np.random.default_rng(0).choice(train_idx, min(args.faces, len(train_idx)), replace=False)
    r, dx, dy = calibrate_crop(data.images[chosen], args.detector)
    print(f"crop: {args.detector} on {len(chosen)} FER2013 faces from {args.train}: found {len(r)}")
    print(f"  FER2013 crop side / box side      median {np.median(r):.3f}, interquartile {np.percentile(r, 25):.3f}-"
          f"{np.percentile(r, 75):.3f}")
    print(f"  box centre - crop centre (sides)  x {np.median(dx):+.3f}, y {np.median(dy):+.3f}")
    if args.detector == "blazeface":
        from ferkit.crops import calibrate_alignment

        r, dx, dy = calibrate_alignment(data.images[chosen])
        print(f"  keypoints: crop side / face size  median {np.median(r):.3f}, interquartile "
              f"{np.percentile(r, 25):.3f}-{np.percentile(r, 75):.3f}; crop centre - eyes' centre (face sizes, "
              f"the face's frame) x {np.median(dx):+.3f}, y {np.median(dy):+.3f}")


def pasted_faces(data, count, rng, canvas=(720, 1280), per_image=3, pad=0):
    """Composite photos of real FER2013 faces, enlarged 3-5x and pasted on a
    smooth random background: [(rgb, [(box, index)])], box as pasted (the
    48x48 face's). pad: pixels (at 48x48 scale) of the face's edge repeated
    around it first, so a detector that looks for a head sees one."""
    import cv2

    images, picks = [], rng.permutation(len(data))[:count]
    for start in range(0, count, per_image):
        h, w = canvas
        yy, xx = np.mgrid[0:h, 0:w]
        background = 90 + 60 * np.sin(xx / rng.uniform(80, 300) + rng.uniform(0, 6)) * np.cos(yy / rng.uniform(80, 300))
        rgb = np.repeat(background[..., None], 3, axis=2) * rng.uniform(0.7, 1.2, size=3)
        placed = []
        for slot, index in enumerate(picks[start : start + per_image]):
            side = int(48 * rng.uniform(3, 5) * (48 + 2 * pad) / 48 if pad else 48 * rng.uniform(3, 5))
            x = int(slot * w / per_image + rng.uniform(10, max(11, w / per_image - side - 10)))
            y = int(rng.uniform(10, max(11, h - side - 10)))
            face = data.images[index, :, :, 0]
            if pad:
                face = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            face = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
            side = min(side, w - x, h - y)
            rgb[y : y + side, x : x + side] = face[:side, :side, None]
            inner = round(side * 48 / (48 + 2 * pad))
            offset = (side - inner) // 2
            placed.append(((x + offset, y + offset, inner, inner), index))
        images.append((np.clip(rgb, 0, 255).astype(np.uint8), placed))
    return images


def bench_detectors(args):
    """Each detector on composite photos of real faces: faces found, false
    positives, milliseconds per 1280x720 image and per 640x360 copy of it
    (one pass, as for video frames), and the emotion accuracy of the whole
    pipeline against the model on the CSV faces themselves."""
    import cv2

    from ferkit.detectors import DETECTORS
    from ferkit.crops import face_crop
    from ferkit.boxes import xywh_iou as iou
    from ferkit.images import to_gray
    from ferkit.inference import Predictor

    data = fer2013.load_csv(args.train)
    _, val_idx = fer2013.split_indices(data)
    val = data.subset(val_idx)
    photos = pasted_faces(val, args.faces, np.random.default_rng(1), per_image=3 if args.pad < 16 else 2, pad=args.pad)
    predict = Predictor([load_for_script(args.model, "auto")], tta="flip")
    indexes = [i for _, placed in photos for _, i in placed]
    direct = predict(val.images[indexes]).argmax(1) == val.labels[indexes]
    direct_by_index = dict(zip(indexes, direct.tolist()))
    print(f"detectors: {len(indexes)} validation faces pasted into {len(photos)} 1280x720 images "
          f"({args.pad} pixels of edge around each 48x48 face); the model on the 48x48 faces themselves: "
          f"accuracy {direct.mean():.4f}")
    small = [cv2.resize(rgb, (640, 360), interpolation=cv2.INTER_AREA) for rgb, _ in photos]
    runs = [(name, False) for name in args.detector_list.split(",")]
    if "blazeface" in args.detector_list.split(","):
        runs.insert(1, ("blazeface", True))  # Also as a photo is searched: with its windows.
    for name, thorough in runs:
        detector = DETECTORS[name]()
        found = false = correct = same = 0
        seconds = 0.0
        for rgb, placed in photos:
            start = time.perf_counter()
            detections = detector(rgb, thorough=thorough)
            seconds += time.perf_counter() - start
            matched = set()
            for detection in detections:
                overlaps = [(iou(detection.box, truth), i) for truth, i in placed]
                best, index = max(overlaps)
                if best < 0.3 or index in matched:
                    false += 1
                    continue
                matched.add(index)
                face = face_crop(to_gray(rgb), detection, name)
                correct += int(predict(face[None]).argmax() == val.labels[index])
                same += int(direct_by_index[index])
            found += len(matched)
        start = time.perf_counter()
        for rgb in small:
            detector(rgb, thorough=thorough)
        small_ms = 1000 * (time.perf_counter() - start) / len(small)
        name = name + (" (photo: windows)" if thorough else "")
        print(f"  {name:<9} found {found}/{len(indexes)}, false positives {false}, "
              f"{1000 * seconds / len(photos):.1f} ms per 1280x720 image, {small_ms:.1f} ms per 640x360; "
              f"emotion accuracy on the faces found: {correct / max(1, found):.4f} through the pipeline, "
              f"{same / max(1, found):.4f} on their 48x48 originals")


def bench_rotation(args):
    """What alignment buys: validation faces (PublicTest for a file with a
    Usage column) enlarged 4x onto a padded canvas, turned by each angle,
    found again by BlazeFace and classified with and without turning the
    crop upright; against the model on the upright 48x48 faces."""
    import cv2

    from ferkit.detectors import DETECTORS
    from ferkit.crops import face_crop
    from ferkit.inference import Predictor

    data = fer2013.load_csv(args.train)
    _, val_idx = fer2013.split_indices(data)
    chosen = np.random.default_rng(0).choice(val_idx, min(args.faces, len(val_idx)), replace=False)
    faces, labels = data.images[chosen], data.labels[chosen]
    model = load_for_script(args.model, "auto")
    predict = Predictor([model], tta="flip")
    upright = predict(faces).argmax(1) == labels
    detector = DETECTORS["blazeface"]()
    print(f"rotation: {len(chosen)} validation faces of {args.train}, {os.path.basename(args.model)}, flip TTA; "
          f"upright 48x48 faces: accuracy {upright.mean():.4f}")
    for angle in (int(a) for a in args.angles.split(",")):
        crops = {True: [], False: []}
        kept = []
        for face, label in zip(faces, labels):
            big = cv2.copyMakeBorder(face[:, :, 0], 48, 48, 48, 48, cv2.BORDER_REPLICATE)
            big = cv2.resize(big, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
            turn = cv2.getRotationMatrix2D((big.shape[1] / 2, big.shape[0] / 2), angle, 1.0)
            big = cv2.warpAffine(big, turn, big.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
            found = detector(np.repeat(big[..., None], 3, axis=2))
            if not found:
                continue
            best = max(found, key=lambda d: d.box[2] * d.box[3])
            for align in (True, False):
                crops[align].append(face_crop(big, best, "blazeface", align=align))
            kept.append(label)
        kept = np.array(kept)
        line = f"  {angle:+3d} degrees: found {len(kept)}/{len(chosen)}"
        for align in (True, False):
            if len(kept):
                accuracy = np.mean(predict(np.stack(crops[align])).argmax(1) == kept)
                line += f"; {'aligned' if align else 'upright crop'} {accuracy:.4f}"
        print(line)


def bench_emotions(args):
    """emotions.py end to end: a 1-megapixel photo with one face, and a
    1280x720 video with one face (every frame), against its start-up."""
    import cv2
    from matplotlib import cbook

    from ferkit.images import read_image

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
            x = 200 + 3 * i
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
    from ferkit import precision
    from ferkit.inference import OnnxModel, Predictor

    faces, _ = synthetic_faces(args.faces)
    first = "import sys, numpy as np; from ferkit.inference import Predictor, load_for_script; " \
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
    from ferkit.inference import OnnxModel, Predictor

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

    from ferkit.images import read_image

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
    from ferkit import ferplus

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
    from ferkit import ferplus
    from ferkit import shifts
    from ferkit.inference import Predictor
    from ferkit.metrics import mean_class_recall

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
    and mean class recall of each, and each difference with its 95% interval
    from a paired bootstrap within classes (metrics.paired_bootstrap)."""
    from ferkit import ferplus
    from ferkit.inference import Predictor
    from ferkit.metrics import mean_class_recall, paired_bootstrap

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
        result = paired_bootstrap(labels, predicted[reference], predicted[path], ferplus.NUM_CLASSES, args.draws)
        print(f"{model_label(path)} - {model_label(reference)}: " + "; ".join(
            f"{name} {d:+.4f} [{low:+.4f}, {high:+.4f}], ahead in {ahead:.1%} of draws"
            for name, (d, low, high, ahead) in result.items()))


def bench_closeups(args):
    """Faces that fill the picture: --faces validation faces of --train saved
    as PNG at 48, 96 and 192 px, and the Grace Hopper photo cropped to its
    face (tight to loose, 64-512 px), each searched as emotions.py searches a
    photo; the share found with the close-up pass and without it."""
    import cv2
    from matplotlib import cbook

    from ferkit.blazeface import BlazeFace
    from ferkit.images import read_image

    data = fer2013.load_csv(args.train)
    _, val_idx = fer2013.split_indices(data)
    chosen = np.random.default_rng(0).choice(val_idx, min(args.faces, len(val_idx)), replace=False)
    detectors = {"with the close-up pass": BlazeFace(), "full range alone": BlazeFace(close_up=False)}

    def png(gray, side):
        ok, encoded = cv2.imencode(".png", cv2.resize(gray, (side, side), interpolation=cv2.INTER_LINEAR))
        return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2RGB)

    sets = {f"FER2013 faces at {side} px": [png(data.images[i][:, :, 0], side) for i in chosen]
            for side in (48, 96, 192)}
    photo = read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    (x, y, w, h), _, _ = max(detectors["with the close-up pass"](photo), key=lambda f: f[0][2] * f[0][3])
    crops = []
    for scale in (1.0, 1.2, 1.5, 2.0):  # The crop's side over the detector's box.
        side = round(max(w, h) * scale)
        left, top = max(0, round(x + w / 2 - side / 2)), max(0, round(y + h / 2 - side / 2))
        face = photo[top : top + side, left : left + side]
        crops += [cv2.resize(face, (s, s), interpolation=cv2.INTER_AREA) for s in (64, 128, 256, 512)]
    sets["Grace Hopper cropped to her face"] = crops
    print(f"closeups: {len(chosen)} validation faces of {args.train}; BlazeFace as emotions.py runs it on photos")
    for name, images in sets.items():
        line = f"  {name:<34}"
        for label, detector in detectors.items():
            found = sum(len(detector(image, tile_side=480)) > 0 for image in images)
            line += f"  {label}: {found}/{len(images)} ({found / len(images):.1%})"
        print(line)


def steady_clip(face, frames, rng, side=(480, 640), fps=30):
    """A clip of a still face as a camera sees it: the 48x48 face (edges
    repeated around it, so the detector sees a head) enlarged to about 250
    px on a grey frame, each frame moved by up to 3 px, scaled by up to 3%
    and given grey noise of sigma 4: [RGB frames]."""
    import cv2

    head = cv2.copyMakeBorder(face[:, :, 0], 24, 24, 24, 24, cv2.BORDER_REPLICATE)
    head = cv2.resize(head, (288, 288), interpolation=cv2.INTER_CUBIC)
    clip = []
    for _ in range(frames):
        scale = 1 + rng.uniform(-0.03, 0.03)
        centre = (side[1] / 2 + rng.uniform(-3, 3), side[0] / 2 + rng.uniform(-3, 3))
        matrix = np.array([[scale, 0, centre[0] - scale * 144], [0, scale, centre[1] - scale * 144]])
        frame = cv2.warpAffine(head, matrix, (side[1], side[0]), borderValue=128).astype(np.float32)
        frame = np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8)
        clip.append(cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB))
    return clip


def bench_jitter(args):
    """Steady readings: --faces validation faces of --train, each a clip of
    --frames frames at 30 frames/s of a still face (steady_clip), each frame's
    faces read by the inference core (EmotionReader.faces, the video pass) and
    followed by the trackers emotions.py's video loop uses, without smoothing and with it: top-class
    changes a second and frames with a face. Then the lag to a real change:
    clips that switch from one face to another halfway, and how long after
    the switch the reading names the new face's emotion."""
    from ferkit.reader import EmotionReader
    from ferkit.smoothing import DEFAULT_TIME_CONSTANT
    from ferkit.tracking import FaceTracks

    fps, frames = 30, args.frames
    data = fer2013.load_csv(args.train)
    _, val_idx = fer2013.split_indices(data)
    rng = np.random.default_rng(0)
    chosen = rng.choice(val_idx, min(args.faces, len(val_idx)), replace=False)
    if len(chosen) == 0:
        raise cli.UsageError(f"--train {args.train}: no validation faces to make clips of")
    reader = EmotionReader(args.onnx, tta="flip")
    clips = [steady_clip(data.images[i], frames, rng) for i in chosen]
    found = [reader.faces(clip) for clip in clips]  # Each frame's faces, read once, smoothed below.

    def top_classes(faces_by_frame, time_constant):
        tracks, tops = FaceTracks(time_constant), []
        for k, faces in enumerate(faces_by_frame):
            readings = tracks.update(k, k / fps, faces)
            tops.append(int(np.argmax(readings[0].face.probabilities)) if readings else None)
        return tops

    print(f"jitter: {len(chosen)} clips of a still face, {frames} frames at {fps} frames/s (shifts of 3 px, "
          f"scale 3%, noise sigma 4), {os.path.basename(args.onnx)}, flip TTA")
    for label, time_constant in (("raw", 0), (f"smoothed {DEFAULT_TIME_CONSTANT:g} s", DEFAULT_TIME_CONSTANT)):
        changes, with_face = [], 0
        for faces_by_frame in found:
            tops = top_classes(faces_by_frame, time_constant)
            with_face += sum(t is not None for t in tops)
            named = [t for t in tops if t is not None]
            changes.append(sum(a != b for a, b in zip(named, named[1:])) / (frames / fps))
        print(f"  {label:<14} top-class changes a second: mean {np.mean(changes):.2f}, worst {np.max(changes):.2f}, "
              f"clips that change {sum(c > 0 for c in changes)}/{len(changes)}; frames with a face "
              f"{with_face}/{frames * len(found)}")
    # Lag: two clips that each read steadily (one class in every raw frame
    # with a face), of different classes, joined halfway; the time from the
    # switch until the reading first names the second clip's class.
    steady = {}
    for i, faces_by_frame in enumerate(found):
        named = {t for t in top_classes(faces_by_frame, 0) if t is not None}
        if len(named) == 1:
            steady[i] = named.pop()
    pairs = [(a, b) for a in steady for b in steady if steady[a] != steady[b]][:20]
    for label, time_constant in (("raw", 0), (f"smoothed {DEFAULT_TIME_CONSTANT:g} s", DEFAULT_TIME_CONSTANT)):
        lags = []
        for a, b in pairs:
            tops = top_classes(found[a][: frames // 2] + found[b][frames // 2 :], time_constant)
            after = [k for k in range(frames // 2, frames) if tops[k] == steady[b]]
            lags.append((after[0] - frames // 2) / fps if after else np.inf)
        if lags:
            print(f"  {label:<14} lag to a real change: median {np.median(lags):.2f} s, worst {np.max(lags):.2f} s "
                  f"({len(lags)} switches between steady clips)")
