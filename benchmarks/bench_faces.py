"""What bench.py measures of faces in pictures: the crop against FER2013's,
the detectors on pasted real faces, turned faces, close-ups, and steady
readings in time (jitter). Each bench_* function is one mode."""
import os
import time

import numpy as np

from ferkit.programs import cli
from ferkit.data import fer2013
from ferkit.infer.inference import load_for_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench_crop(args):
    """faces.calibrate_crop on --faces FER2013 faces: the figures CROP_SCALE
    is set from."""
    from ferkit.vision.crops import calibrate_crop

    data = fer2013.load_csv(args.train)
    train_idx, _ = fer2013.split_indices(data)  # Training faces only: the held-out ones stay out of every choice.
    chosen = np.random.default_rng(0).choice(train_idx, min(args.faces, len(train_idx)), replace=False)
    r, dx, dy = calibrate_crop(data.images[chosen], args.detector)
    print(f"crop: {args.detector} on {len(chosen)} FER2013 faces from {args.train}: found {len(r)}")
    print(f"  FER2013 crop side / box side      median {np.median(r):.3f}, interquartile {np.percentile(r, 25):.3f}-"
          f"{np.percentile(r, 75):.3f}")
    print(f"  box centre - crop centre (sides)  x {np.median(dx):+.3f}, y {np.median(dy):+.3f}")
    if args.detector == "blazeface":
        from ferkit.vision.crops import calibrate_alignment

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

    from ferkit.vision.detectors import DETECTORS
    from ferkit.vision.crops import face_crop
    from ferkit.vision.boxes import xywh_iou as iou
    from ferkit.vision.images import to_gray
    from ferkit.infer.inference import Predictor

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

    from ferkit.vision.detectors import DETECTORS
    from ferkit.vision.crops import face_crop
    from ferkit.infer.inference import Predictor

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


def bench_closeups(args):
    """Faces that fill the picture: --faces validation faces of --train saved
    as PNG at 48, 96 and 192 px, and the Grace Hopper photo cropped to its
    face (tight to loose, 64-512 px), each searched as emotions.py searches a
    photo; the share found with the close-up pass and without it."""
    import cv2
    from matplotlib import cbook

    from ferkit.vision.blazeface import BlazeFace
    from ferkit.vision.images import read_image

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
    --frames frames at 30 frames/s of a still face (steady_clip), read as
    the video loop reads them (EmotionReader.analyser.faces with a
    DetectEvery schedule, the frames in order) for each --detect-every and
    both video TTAs (flip, one view), then followed by the trackers the loop
    uses, without smoothing and with it: top-class changes a second, frames
    with a face, and the share of frames whose reading is the face's
    FER2013 label. Then the lag to a real change: clips that switch from one
    face to another halfway (each half read on its own), and how long after
    the switch the reading names the new face's emotion."""
    from ferkit.infer.reader import EmotionReader
    from ferkit.vision.detectors import DetectEvery

    fps, frames = 30, args.frames
    data = fer2013.load_csv(args.train)
    _, val_idx = fer2013.split_indices(data)
    rng = np.random.default_rng(0)
    chosen = rng.choice(val_idx, min(args.faces, len(val_idx)), replace=False)
    if len(chosen) == 0:
        raise cli.UsageError(f"--train {args.train}: no validation faces to make clips of")
    try:
        schedules = sorted({int(k) for k in args.detect_every.split(",")})
    except ValueError:
        schedules = [0]
    if min(schedules) < 1:
        raise cli.UsageError(f"--detect-every {args.detect_every}: whole numbers of frames, at least 1, "
                             "joined by commas")
    reader = EmotionReader(args.onnx)
    clips = [steady_clip(data.images[i], frames, rng) for i in chosen]
    labels = data.labels[chosen]
    print(f"jitter: {len(chosen)} clips of a still face, {frames} frames at {fps} frames/s (shifts of 3 px, "
          f"scale 3%, noise sigma 4), {os.path.basename(args.onnx)}")
    for every in schedules:
        for tta in ("flip", "none"):
            found, passes = [], 0
            for clip in clips:  # Each clip's frames in order, as a video's.
                detect = DetectEvery(reader.analyser.detector, every)
                found.append(reader.analyser.faces(clip, detect=detect, tta=tta))
                passes += detect.full_passes
            print(f"detect every {every} frame(s) ({passes} full passes for {frames * len(clips)} frames), "
                  f"{'flip TTA' if tta == 'flip' else 'one view'}")
            jitter_lines(found, labels, frames, fps)


def top_classes(faces_by_frame, time_constant, fps):
    """The followed face's top class in each frame (None where there is no
    face), as the video loop's trackers give it."""
    from ferkit.vision.tracking import FaceTracks

    tracks, tops = FaceTracks(time_constant), []
    for k, faces in enumerate(faces_by_frame):
        readings = tracks.update(k, k / fps, faces)
        tops.append(int(np.argmax(readings[0].face.probabilities)) if readings else None)
    return tops


def jitter_lines(found, labels, frames, fps):
    """bench_jitter's figures for one way of reading the clips."""
    from ferkit.vision.smoothing import DEFAULT_TIME_CONSTANT

    smoothings = (("raw", 0), (f"smoothed {DEFAULT_TIME_CONSTANT:g} s", DEFAULT_TIME_CONSTANT))
    for label, time_constant in smoothings:
        changes, with_face, right = [], 0, 0
        for faces_by_frame, truth in zip(found, labels):
            tops = top_classes(faces_by_frame, time_constant, fps)
            with_face += sum(t is not None for t in tops)
            right += sum(t == truth for t in tops)
            named = [t for t in tops if t is not None]
            changes.append(sum(a != b for a, b in zip(named, named[1:])) / (frames / fps))
        print(f"  {label:<14} top-class changes a second: mean {np.mean(changes):.2f}, worst {np.max(changes):.2f}, "
              f"clips that change {sum(c > 0 for c in changes)}/{len(changes)}; frames with a face "
              f"{with_face}/{frames * len(found)}; reading = label {right / (frames * len(found)):.3f}")
    # Lag: two clips that each read steadily (one class in every raw frame
    # with a face), of different classes, joined halfway; the time from the
    # switch until the reading first names the second clip's class.
    steady = {}
    for i, faces_by_frame in enumerate(found):
        named = {t for t in top_classes(faces_by_frame, 0, fps) if t is not None}
        if len(named) == 1:
            steady[i] = named.pop()
    pairs = [(a, b) for a in steady for b in steady if steady[a] != steady[b]][:20]
    for label, time_constant in smoothings:
        lags = []
        for a, b in pairs:
            tops = top_classes(found[a][: frames // 2] + found[b][frames // 2 :], time_constant, fps)
            after = [k for k in range(frames // 2, frames) if tops[k] == steady[b]]
            lags.append((after[0] - frames // 2) / fps if after else np.inf)
        if lags:
            print(f"  {label:<14} lag to a real change: median {np.median(lags):.2f} s, worst {np.max(lags):.2f} s "
                  f"({len(lags)} switches between steady clips)")
