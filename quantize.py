"""Write an int8 copy of an exported classifier and check it against the float file.

    python quantize.py models/ferplus_cnn.onnx --train data/fer2013.csv.gz \\
        --ferplus data/fer2013new.csv                 # -> models/ferplus_cnn.int8.onnx
    python quantize.py models/fer2013_cnn.onnx --train data/fer2013.csv.gz
    python quantize.py models/ferplus_cnn.onnx --ferplus data/fer2013new.csv --convolutions

The dense layers' weights become int8 (dynamic quantisation); with
--convolutions the convolutions too, calibrated on --faces faces drawn from
the training part of --train (never the validation faces). Then both files read the validation faces (PublicTest
for a file with a Usage column) with flip TTA, as predict.py and the scripts
do: the printed lines give the share of faces whose top class is the same,
each file's accuracy and mean class recall (FER+'s majority labels with
--ferplus), and both files' faces per second at one face (two views) and at
32. The gate for shipping an int8 file (report 13): accuracy and mean class
recall within 0.3 point of the float file's, the top class the same on at
least 99% of the faces. ferkit/infer/quantize.py says what is quantised.
"""
import os
import time

import numpy as np

from ferkit.programs import cli
from ferkit.data import fer2013


def build_parser():
    p = cli.parser(__doc__)
    p.add_argument("model", help="an exported .onnx classifier (export.py)")
    p.add_argument("--train", default="data/fer2013.csv.gz",
                   help="its training CSV: calibration faces from the training part, the check on the validation part")
    p.add_argument("--ferplus", default=None, metavar="FER2013NEW_CSV", help="FER+'s votes, for an 8-class FER+ model")
    p.add_argument("--convolutions", action="store_true",
                   help="quantise the convolutions too (static, calibrated on training faces)")
    p.add_argument("--keep-float", nargs="*", default=[], metavar="LAYER",
                   help="with --convolutions: convolutions left in float32, by layer name (e.g. conv3_1)")
    p.add_argument("--faces", type=int, default=512, help="with --convolutions: calibration faces")
    p.add_argument("--seed", type=int, default=0, help="which training faces calibrate")
    p.add_argument("--out", default=None, help="file to write (default: MODEL with .int8.onnx)")
    return p


def parse_args(argv=None):
    args = build_parser().parse_args(argv)
    if not args.model.endswith(".onnx") or args.model.endswith(".int8.onnx"):
        raise cli.UsageError(f"{args.model}: quantize.py takes a float .onnx file (export.py writes one)")
    if not os.path.isfile(args.model):
        raise cli.ModelFileError(f"{args.model}: no such model file")
    if args.keep_float and not args.convolutions:
        raise cli.UsageError("--keep-float names convolutions to leave float; it needs --convolutions")
    if args.faces < 1:
        raise cli.UsageError(f"--faces {args.faces}: at least one calibration face")
    args.out = args.out or args.model[: -len(".onnx")] + ".int8.onnx"
    if not args.out.endswith(".onnx") or os.path.abspath(args.out) == os.path.abspath(args.model):
        raise cli.UsageError(f"--out {args.out}: an .onnx file other than the model")
    return args


def faces_per_second(model, faces):
    """Faces a second through model, flip TTA, best of three 0.5 s rounds."""
    from ferkit.infer.inference import Predictor

    predict = Predictor([model], "flip")
    predict(faces)
    best = 0.0
    for _ in range(3):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < 0.5:
            predict(faces)
            count += len(faces)
        best = max(best, count / (time.perf_counter() - start))
    return best


def main(argv=None):
    args = parse_args(argv)
    from ferkit.data import ferplus
    from ferkit.infer import quantize
    from ferkit.infer.inference import OnnxModel, Predictor
    from ferkit.infer.metrics import mean_class_recall

    source = OnnxModel(args.model)
    data = fer2013.load_csv(args.train)
    train_idx, val_idx = fer2013.split_indices(data)
    labels = data.labels
    if args.ferplus:
        labels = ferplus.majority_labels(ferplus.load_votes(args.ferplus, data, args.train))
        val_idx = val_idx[labels[val_idx] >= 0]  # FER+'s unknown and not-a-face rows have no label.
    if len(source.class_names) != (ferplus.NUM_CLASSES if args.ferplus else fer2013.NUM_CLASSES):
        raise cli.UsageError(f"{args.model} has {len(source.class_names)} classes; "
                             + ("drop --ferplus for a FER2013 model" if args.ferplus else "a FER+ model needs --ferplus"))
    calibration, done = None, "dense layers int8"
    if args.convolutions:
        rng = np.random.default_rng(args.seed)
        calibration = data.images[np.sort(rng.choice(train_idx, min(args.faces, len(train_idx)), replace=False))]
        done += (f"; convolutions int8, calibrated on {len(calibration)} training faces, float: "
                 f"{', '.join(args.keep_float) or 'none'}")
    extra = {"calibration_data": os.path.basename(args.train), "seed": args.seed} if args.convolutions else {}
    size = quantize.quantize(args.model, args.out, calibration, args.keep_float, extra)
    print(f"wrote {args.out} ({size / 2**20:.1f} MiB; {args.model}: {os.path.getsize(args.model) / 2**20:.1f} MiB): "
          + done)

    int8 = OnnxModel(args.out)
    faces, truth = data.images[val_idx], labels[val_idx]
    classes = len(source.class_names)
    float_p, int8_p = Predictor([source], "flip")(faces), Predictor([int8], "flip")(faces)
    same, difference = quantize.agreement(float_p, int8_p)
    print(f"{len(faces)} validation faces, flip TTA: top class the same on {same:.2%} (gate >= 99%), "
          f"largest probability difference {difference:.3f}")
    scores = {}
    for name, p in (("float", float_p), ("int8", int8_p)):
        predicted = p.argmax(1)
        scores[name] = (np.mean(predicted == truth), mean_class_recall(truth, predicted, classes))
        print(f"  {name:<5} accuracy {scores[name][0]:.4f}, mean class recall {scores[name][1]:.4f}")
    (fa, fr), (ia, ir) = scores["float"], scores["int8"]
    print(f"  int8 - float: accuracy {ia - fa:+.4f}, mean class recall {ir - fr:+.4f} (gate: within 0.003 each)")
    for n in (1, 32):
        rates = [faces_per_second(m, faces[:n]) for m in (source, int8)]
        print(f"  {n:>2} face(s) a call, flip: float {rates[0]:6.0f} faces/s, int8 {rates[1]:6.0f} "
              f"({rates[1] / rates[0]:.2f}x)")


if __name__ == "__main__":
    cli.run(main)
