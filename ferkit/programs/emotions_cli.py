"""Read the emotions of the faces in your own photos, folders and videos.

    python emotions.py photo.jpg                              # a table on stdout
    python emotions.py photos/ --csv emotions.csv --out-dir annotated/
    python emotions.py clip.mp4 --every 5 --json clip.json --out-dir annotated/
    ferkit emotions photo.jpg                                 # the same, from an installed ferkit

PATH is a photo (JPEG, PNG, BMP, WebP, TIFF), a folder (searched recursively)
or a video (anything OpenCV reads). Faces are found by BlazeFace on ONNX
Runtime (or --detector haar or mtcnn), turned so the eyes are level, cropped
as FER2013's faces were, and classified by the model released with the
repository unless --model says otherwise.
"""
import contextlib
import csv
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ferkit.programs import cli
from ferkit.vision.detectors import DETECT_SIDE, DETECTORS
from ferkit.data.fer2013 import DataError
from ferkit.files import atomic_output
from ferkit.vision.images import kind_of
from ferkit.infer.inference import precision_line
from ferkit.infer.reader import DETECT_EVERY, VIDEO_TTA, EmotionReader
from ferkit.vision.records import face_records, record
from ferkit.vision.smoothing import DEFAULT_TIME_CONSTANT


# Photos analysed at once: BlazeFace runs on one thread a call (it is
# quicker so: detectors.py), so two photos keep two cores busy (report 13).
PHOTO_WORKERS = 2


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("paths", nargs="+", metavar="PATH", help="photos, folders and videos")
    p.add_argument("--model", default=cli.released_model(cli.EMOTIONS_MODEL, prefer_onnx=True, int8=True),
                   help="saved .keras or .onnx model (default: the released ONNX copy, which starts in a fraction of a second)")
    p.add_argument("--detector", choices=sorted(DETECTORS), default="blazeface",
                   help="face detector: blazeface (MediaPipe's, on ONNX Runtime), haar (OpenCV's cascade) or mtcnn")
    p.add_argument("--detect-size", type=int, default=None,
                   help=f"haar and mtcnn: detect on a copy whose longer side is at most this many pixels "
                        f"(raise it for small faces; default {DETECT_SIDE}); BlazeFace works at its own size")
    p.add_argument("--no-align", action="store_true",
                   help="crop faces upright as found, without turning them so the eyes are level")
    cli.add_tta_flag(p, "flip", ("none", "flip"), help="also classify each face's mirror image")
    p.add_argument("--every", type=int, default=1, help="videos: analyse every Nth frame")
    p.add_argument("--detect-every", type=int, default=DETECT_EVERY, metavar="N",
                   help="videos: the full face detector on every Nth analysed frame, each face followed in between "
                        "(found again near its last box); 1 for the full detector on every frame")
    p.add_argument("--video-tta", choices=("none", "flip"), default=VIDEO_TTA,
                   help="videos: also classify each face's mirror image (--tta is the photos')")
    p.add_argument("--smooth", type=float, default=DEFAULT_TIME_CONSTANT, metavar="SECONDS",
                   help="videos: average each face's probabilities over time with this time constant, so a steady "
                        "face reads steadily (the frame's own values stay in --json as raw_probabilities); 0 for none")
    p.add_argument("--json", default=None, help="write every face as a JSON list of records")
    p.add_argument("--csv", default=None, help="write every face as a CSV row, one column per class")
    p.add_argument("--out-dir", default=None, help="write annotated copies (and, for videos, an annotated video "
                                                   "and a figure of each emotion over time) here")
    cli.add_precision_flag(p)
    args = p.parse_args(argv)
    if args.detect_size is not None and args.detector == "blazeface":
        raise cli.UsageError("--detect-size applies to --detector haar and mtcnn; BlazeFace reads every picture at "
                             "its own 192 px (and searches photos in windows)")
    args.detect_size = DETECT_SIDE if args.detect_size is None else args.detect_size
    if args.every < 1 or args.detect_every < 1 or args.detect_size < 32:
        raise cli.UsageError("--every and --detect-every must be at least 1 and --detect-size at least 32")
    if args.smooth < 0:
        raise cli.UsageError(f"--smooth {args.smooth:g}: seconds, 0 for no smoothing")
    return args


def find_inputs(paths, skip=None):
    """[(path, kind, folder)] for every photo and video named (folder None) or
    inside a named folder (but not inside `skip`, the output folder, so that a
    rerun does not read its own annotated copies).
    A named file that does not exist is an error; inside folders, files that
    are neither photos nor videos are skipped with a warning."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            for folder, subfolders, files in os.walk(path):
                subfolders[:] = sorted(d for d in subfolders if not skip or
                                       os.path.abspath(os.path.join(folder, d)) != os.path.abspath(skip))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    full = os.path.join(folder, name)
                    if kind_of(full):
                        found.append((full, kind_of(full), path))
                    else:
                        print(f"warning: {full}: not a photo or video, skipped", file=sys.stderr)
        elif os.path.isfile(path):
            found.append((path, kind_of(path) or "image", None))  # Let the image reader judge an odd extension.
        else:
            raise DataError(path, "no such file or folder")
    if not found:
        raise cli.UsageError(f"no photos or videos in {', '.join(paths)}")
    return found


def analyse_photo(path, reader, out_dir, root, rgb=None):
    """rgb: the photo already decoded (a named file, checked first), else read here."""
    from ferkit.vision.drawing import annotate
    from ferkit.vision.images import read_image

    rgb = read_image(path) if rgb is None else rgb
    found = reader.faces([rgb], thorough=True)[0]
    if not found:
        records = [record(path, None, None)]  # main() says so, in the files' order.
    else:
        records = face_records(path, found, reader.class_names)
    if out_dir:
        from PIL import Image

        target = output_path(out_dir, root, path, ".emotions.png")
        with atomic_output(target) as tmp:
            Image.fromarray(annotate(rgb, labels_of(found, reader.class_names))).save(tmp, format="PNG")
    return records


def labels_of(found, names):
    return [(f.box, names[int(np.argmax(f.probabilities))], float(np.max(f.probabilities))) for f in found]


def output_path(out_dir, root, path, suffix):
    """out_dir/<path relative to the folder it was found in, or its name><suffix>."""
    relative = os.path.relpath(path, root) if root else os.path.basename(path)
    return os.path.join(out_dir, os.path.splitext(relative)[0] + suffix)


def analyse_video(path, reader, every, out_dir, root, smooth=DEFAULT_TIME_CONSTANT):
    """Every `every`th frame's faces, tracked and smoothed in time, through
    the reader's video loop (EmotionReader.frames). With out_dir, also an
    annotated copy of the video (each frame shows the latest result) and a
    figure of each face's emotions over time."""
    import cv2

    from ferkit.vision.drawing import annotate

    target = output_path(out_dir, root, path, ".emotions.mp4") if out_dir else None
    fps, total = video_rate_and_length(path)
    writer, records, shown, frames = None, [], [], 0
    progress = Progress(path, total)
    with atomic_output(target) if target else contextlib.nullcontext() as tmp:
        for frame in reader.frames(path, every, smooth, decode_all=bool(target)):
            frames = frame.index + 1
            if frame.records is not None:
                records += frame.records
                shown = labels_of(frame.faces, reader.class_names)
            if target:
                if writer is None:
                    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (frame.rgb.shape[1], frame.rgb.shape[0]))
                writer.write(cv2.cvtColor(annotate(frame.rgb, shown), cv2.COLOR_RGB2BGR))
            progress.update(frames)
        progress.close(frames)
        if writer is not None:
            writer.release()
    if target and records:
        from ferkit.train.figures import plot_timeline

        longest = sorted(tracks_of(records).items(), key=lambda t: -len(t[1]))[:4]
        panels = [(f"face {face}: mostly {emotion} (mean probability {p:.2f})", rows)
                  for (_, face), rows in longest for emotion, p in [dominant(rows)]]
        plot_timeline(panels, os.path.basename(path), output_path(out_dir, root, path, ".emotions-timeline.png"))
    if not records:
        print(f"{path}: no face found in {frames} frames")
        records = [record(path, None, None)]
    return records


def video_rate_and_length(path):
    """(frames a second, frame count or None) as the video's header says."""
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        return capture.get(cv2.CAP_PROP_FPS) or 25.0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    finally:
        capture.release()


class Progress:
    """A one-line progress bar on stderr for long videos (only on a terminal)."""

    def __init__(self, name, total):
        self.name, self.total, self.started, self.shown = name, total, time.time(), 0.0
        self.active = sys.stderr.isatty()

    def update(self, done):
        if self.active and time.time() - self.shown > 0.2:
            self.shown = time.time()
            rate = done / max(1e-9, self.shown - self.started)
            if self.total:
                bar = "#" * int(30 * done / self.total)
                sys.stderr.write(f"\r{self.name} [{bar:<30}] {done}/{self.total} frames, {rate:.1f} frames/s")
            else:
                sys.stderr.write(f"\r{self.name} {done} frames, {rate:.1f} frames/s")
            sys.stderr.flush()

    def close(self, done):
        if self.active:
            self.shown = 0.0
            self.update(done)
            sys.stderr.write("\n")


def dominant(rows):
    """(emotion, mean probability) with the highest mean over a track."""
    names = list(rows[0]["probabilities"])
    mean = np.mean([[r["probabilities"][n] for n in names] for r in rows], axis=0)
    return names[int(np.argmax(mean))], float(np.max(mean))


def tracks_of(records):
    """{(file, face track): its records} for the faces found in videos."""
    tracks = {}
    for r in records:
        if r["box"] is not None and r["frame"] is not None:
            tracks.setdefault((r["file"], r["face"]), []).append(r)
    return tracks


def print_summary(records):
    """Photos: a row per face. Videos: a row per face track."""
    print(f"{'file':<40} {'face':>4}  {'box [x, y, w, h]':<22} {'emotion':<9} {'p':>5}")
    for r in records:
        if r["box"] is not None and r["frame"] is None:
            print(f"{r['file'][-40:]:<40} {r['face']:>4}  {str(r['box']):<22} {r['emotion']:<9} "
                  f"{r['probabilities'][r['emotion']]:5.2f}")
    for (path, face), rows in tracks_of(records).items():
        emotion, p = dominant(rows)
        span = f"{rows[0]['time']:.1f}-{rows[-1]['time']:.1f} s, {len(rows)} frames"
        print(f"{path[-40:]:<40} {face:>4}  {span:<22} {emotion:<9} {p:5.2f}")


def write_json(path, records):
    with atomic_output(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(records, f, indent=1)


def write_csv(path, records, names):
    columns = ["file", "frame", "time", "face", "x", "y", "w", "h", "emotion", *names]
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for r in records:
                box = r["box"] or [""] * 4
                probabilities = [r["probabilities"][n] if r["probabilities"] else "" for n in names]
                blank = lambda v: "" if v is None else v
                writer.writerow([r["file"], blank(r["frame"]), blank(r["time"]), blank(r["face"]), *box,
                                 blank(r["emotion"]), *probabilities])


def check_named_files(inputs):
    """Every file named on the command line must open, before anything is
    written: a bad one is one line and exit 2 with no annotated copy of the
    good ones left behind. (Inside a folder, a bad file is skipped later.)
    Returns the named photos, decoded, so they are not read twice."""
    import cv2

    from ferkit.vision.images import read_image

    photos = {}
    for path, kind, folder in inputs:
        if folder is not None:
            continue
        if kind == "video":
            capture = cv2.VideoCapture(path)
            ok = capture.isOpened() and capture.read()[0]
            capture.release()
            if not ok:
                raise DataError(path, "cannot be opened as a video" if os.path.exists(path) else "no such file")
        else:
            photos[path] = read_image(path)
    return photos


def main(argv=None):
    args = parse_args(argv)
    inputs = find_inputs(args.paths, skip=args.out_dir)
    reader = EmotionReader(args.model, args.detector, args.tta, align=not args.no_align, precision=args.precision,
                           detect_size=args.detect_size, video_tta=args.video_tta, detect_every=args.detect_every)
    print(precision_line(reader.model_path, args.precision, reader.precision))
    named_photos = check_named_files(inputs)
    records, started = [], time.perf_counter()  # After the start-up: the time the files themselves took.
    with ThreadPoolExecutor(PHOTO_WORKERS) as pool:
        # Photos are read PHOTO_WORKERS at a time, ahead of their turn; results
        # (and their lines) still come in the files' order.
        photos = {i: pool.submit(analyse_photo, path, reader, args.out_dir, folder, named_photos.pop(path, None))
                  for i, (path, kind, folder) in enumerate(inputs) if kind != "video"}
        for i, (path, kind, folder) in enumerate(inputs):
            try:
                if kind == "video":
                    records += analyse_video(path, reader, args.every, args.out_dir, folder, smooth=args.smooth)
                    continue
                found = photos.pop(i).result()
                if found[0]["box"] is None:
                    print(f"{path}: no face found")
                records += found
            except DataError as e:
                if folder is None:
                    for waiting in photos.values():
                        waiting.cancel()
                    raise  # A file named on the command line: one line, exit 2.
                print(f"warning: {e}; skipped", file=sys.stderr)
    print_summary(records)
    faces = sum(r["box"] is not None for r in records)
    print(f"{faces} face(s) in {len(inputs)} file(s), {time.perf_counter() - started:.2f} s")
    if args.json:
        write_json(args.json, records)
    if args.csv:
        write_csv(args.csv, records, reader.class_names)

