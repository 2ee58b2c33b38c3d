"""Write a Kaggle submission (id,label) from one or more trained models.

    python predict.py --model models/cnn.keras --test data/test.csv --out submission.csv
    python predict.py --model a.keras --model b.keras --tta tencrop --labels public_labels.csv

Several --model flags average the models' probabilities (an ensemble). Each
face is averaged with its mirror image unless --tta none. Where labels are
known (a Usage/emotion column in the CSV, or --labels id,label), accuracy is
printed too. A FER+ model (eight classes) answers with the best of FER2013's
seven: a Kaggle label has no contempt.
"""
import csv
import time

import numpy as np

from ferkit.programs import cli
from ferkit.data import fer2013
from ferkit.data.fer2013 import USAGES
from ferkit.files import atomic_output
from ferkit.infer.inference import TTA_MODES, load_for_script  # inference.py imports TensorFlow only when predicting.


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--model", action="append", default=None,
                   help=f"saved .keras or .onnx model; repeat to ensemble (default: the released {cli.released_model()})")
    p.add_argument("--test", default="data/test.csv", help="CSV to predict, any Kaggle FER2013 layout, .gz ok")
    p.add_argument("--out", default="submission.csv", help="submission CSV to write (id,label)")
    cli.add_tta_flag(p, "flip", TTA_MODES,
                     help="test-time augmentation: 'flip' averages each face with its mirror image (0.2-0.9 "
                          "points more public accuracy here, for 1.4x the time), 'tencrop' also with the faces "
                          "moved 3 px each way (10 views), 'none' predicts the faces as they are")
    p.add_argument("--labels", default=None, help="id,label answer key to score against (e.g. public_labels.csv)")
    p.add_argument("--limit", type=int, default=None, help="predict only the first N rows")
    p.add_argument("--batch-size", type=int, default=256, help="faces per forward pass")
    cli.add_precision_flag(p)
    args = p.parse_args(argv)
    args.model = args.model or [cli.released_model()]
    return args


def write_submission(path, ids, predicted):
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "label"])
            writer.writerows(zip(ids.tolist(), predicted.tolist()))


def report_accuracy(data, predicted, labels_path, probabilities=None):
    """Scores against the key (or the file's own labels); probabilities, where
    the model's classes are FER2013's, also give the calibration error."""
    from ferkit.infer.inference import accuracy_lines

    if labels_path:
        known, truth = fer2013.match_labels(data, labels_path)
        print(f"scored against {labels_path}:")
        print("\n".join(accuracy_lines(truth, predicted[known], probabilities=None if probabilities is None
                                        else probabilities[known])))
    elif data.labels is not None:
        parts = [(USAGES[u], data.usage == u) for u in np.unique(data.usage)] if data.usage is not None else [("all", slice(None))]
        for name, rows in parts:
            print(f"{name}:")
            print("\n".join(accuracy_lines(data.labels[rows], predicted[rows],
                                            probabilities=None if probabilities is None else probabilities[rows])))


def main(argv=None):
    started = time.time()
    args = parse_args(argv)
    data = fer2013.load_csv(args.test, limit=args.limit)
    if args.labels:
        fer2013.load_labels(args.labels)  # Fail on a bad key before the slow part.
    from ferkit.infer.inference import Predictor

    models = [load_for_script(path, args.precision) for path in args.model]
    try:
        predictor = Predictor(models, tta=args.tta, batch_size=args.batch_size)
    except ValueError as e:
        raise cli.UsageError(str(e)) from None
    probabilities = predictor(data.images)
    if len(predictor.class_names) > fer2013.NUM_CLASSES:
        print(f"the model predicts {len(predictor.class_names)} classes; the submission takes the best of "
              f"FER2013's {fer2013.NUM_CLASSES} ({', '.join(fer2013.CLASS_NAMES)})")
    predicted = probabilities[:, : fer2013.NUM_CLASSES].argmax(axis=1)
    write_submission(args.out, data.ids, predicted)
    print(f"wrote {len(predicted)} predictions to {args.out} ({len(models)} model(s), tta={'off' if args.tta == 'none' else args.tta}, "
          f"{time.time() - started:.1f} s)")
    seven = probabilities if len(predictor.class_names) == fer2013.NUM_CLASSES else None
    report_accuracy(data, predicted, args.labels, seven)


if __name__ == "__main__":
    cli.run(main)
