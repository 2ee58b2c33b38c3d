"""The confusion matrix of a trained model on the validation split.

    python confusion.py --model models/cnn.keras --data data/train.csv --out runs/figures/confusion_matrix.png
    python confusion.py --model models/ferplus_cnn.keras --data data/fer2013.csv --ferplus data/fer2013new.csv

The split is the one training used (same --val-split, --seed and --limit
defaults), so the matrix shows faces the model did not train on; test data is
used only when asked for: --split test (the PrivateTest rows of a file with a
Usage column: FER2013's private test, FER+'s test set) or --split all on a
labelled test file. With --ferplus the truth is FER+'s majority label (the
validation split: PublicTest); a FER2013 model (seven classes) is then scored
on the faces whose label it can give, contempt left out.
"""
import os

import numpy as np

from ferkit.programs import cli
from ferkit.data import fer2013
from ferkit.data import ferplus
from ferkit.infer import metrics
from ferkit.files import atomic_output
from ferkit.infer.inference import TTA_MODES, load_for_script


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--model", default=cli.released_model(), help="saved .keras or .onnx model")
    p.add_argument("--data", default="data/train.csv", help="labelled CSV (the training CSV for its validation split)")
    p.add_argument("--split", choices=["val", "test", "all"], default="val",
                   help="val: the training run's validation split; test: the PrivateTest rows (held out: report, "
                        "never select); all: every row")
    cli.add_split_flags(p)
    p.add_argument("--labels", default=None, help="id,label key for a CSV without labels (implies --split all)")
    p.add_argument("--ferplus", default=None, metavar="FER2013NEW_CSV",
                   help="score against FER+'s majority labels (fer2013new.csv, joined row by row to --data)")
    cli.add_tta_flag(p, "none", TTA_MODES, help="test-time augmentation, as in predict.py")
    p.add_argument("--out", default="runs/figures/confusion_matrix.png",
                   help="figure to write; the table goes beside it as .txt (the report's figures: --out report/...)")
    cli.add_precision_flag(p)
    return p.parse_args(argv)


def select_faces(args):
    """(images, labels, vote shares or None) of the faces to evaluate."""
    data = fer2013.load_csv(args.data, limit=args.limit)
    if args.ferplus:
        if args.labels or args.limit is not None:
            raise cli.UsageError("--ferplus takes its labels from fer2013new.csv, for the whole file: "
                                 "no --labels, no --limit")
        votes = ferplus.load_votes(args.ferplus, data, args.data)
        labels = ferplus.majority_labels(votes)
        if args.split == "test":
            test_rows(data, args.data)  # One line if the file has no PrivateTest part.
        part = {"val": "PublicTest", "test": "PrivateTest", "all": "all"}[args.split]
        rows = ferplus.part_rows(data, labels, part)  # Faces without a majority label are left out.
        return data.images[rows], labels[rows], ferplus.vote_shares(votes[rows])
    if args.labels:
        keep, labels = fer2013.match_labels(data, args.labels)
        return data.images[keep], labels, None
    if data.labels is None:
        raise fer2013.DataError(args.data, "has no labels; give an id,label key with --labels")
    if args.split == "all":
        return data.images, data.labels, None
    if args.split == "test":
        rows = test_rows(data, args.data)
        return data.images[rows], data.labels[rows], None
    _, val_idx = fer2013.split_indices(data, args.val_split, args.split_seed)
    return data.images[val_idx], data.labels[val_idx], None


def test_rows(data, path):
    rows = fer2013.test_indices(data)
    if len(rows) == 0:
        problem = "has no Usage column" if data.usage is None else "has no PrivateTest rows (held out of this copy?)"
        raise fer2013.DataError(path, f"{problem}; --split test needs FER2013's PrivateTest rows")
    return rows


def plot_confusion(matrix, table, title, path, class_names):
    from ferkit.train.figures import plt, save

    normalized = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig = plt.figure(figsize=(14, 6.2))
    ax = fig.add_axes([0.06, 0.12, 0.46, 0.76])
    image = ax.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="share of the true class")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=35, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in ticks:
        for j in ticks:
            dark = normalized[i, j] > 0.55
            ax.text(j, i, f"{normalized[i, j]:.2f}\n({matrix[i, j]})", ha="center", va="center",
                    fontsize=8, color="white" if dark else "black")
    ax.set_title(title)
    text_ax = fig.add_axes([0.62, 0.12, 0.37, 0.76])
    text_ax.axis("off")
    text_ax.text(0, 0.5, table, family="monospace", fontsize=9.5, va="center")
    save(fig, path)


def main(argv=None):
    args = parse_args(argv)
    if args.labels:
        args.split = "all"
    images, labels, shares = select_faces(args)
    from ferkit.infer.inference import predict_proba

    model = load_for_script(args.model, args.precision)
    names = model.class_names
    beyond = labels >= len(names)  # FER+'s contempt, for a FER2013 model.
    if beyond.any():
        print(f"left out {beyond.sum()} faces whose label ({', '.join(sorted({ferplus.FERPLUS_CLASSES[c] for c in labels[beyond]}))}) "
              f"the model cannot give; it predicts {len(names)} classes")
        images, labels = images[~beyond], labels[~beyond]
    if shares is not None and shares.shape[1] != len(names):
        shares = None  # A FER2013 model's probabilities cover seven of the eight vote classes.
    probabilities = predict_proba([model], images, tta=args.tta)
    predicted = probabilities.argmax(axis=1)
    matrix = metrics.confusion_matrix(labels, predicted, len(names))
    scores = metrics.summary(probabilities, labels, len(names))
    if shares is not None:
        scores["vote_nll"] = metrics.negative_log_likelihood(probabilities, shares)
    table = metrics.class_table(labels, predicted, names) + "\n" + metrics.summary_line(scores) + "\n"
    part = {"val": "PublicTest" if args.ferplus else "validation split", "test": "PrivateTest",
            "all": "all rows"}[args.split]
    truth = ", FER+ majority labels" if args.ferplus else ""
    title = f"{os.path.basename(args.model)} on {os.path.basename(args.data)}, {part}{truth}\n" \
            f"{len(labels)} faces, accuracy {scores['accuracy']:.4f}, mean class recall {scores['mean_recall']:.4f}"
    plot_confusion(matrix, table, title, args.out, names)
    with atomic_output(os.path.splitext(args.out)[0] + ".txt") as tmp:
        with open(tmp, "w") as f:
            f.write(title + "\n\n" + table)
    print(title.replace("\n", ": "))
    print(table)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    cli.run(main)
