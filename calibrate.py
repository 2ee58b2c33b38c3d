"""Calibrate a saved model on its validation faces and fold the result into its last layer.

    python calibrate.py --model runs/ft_la/cnn.keras --train data/fer2013.csv.gz \\
        --ferplus data/fer2013new.csv --out models/ferplus_cnn.keras

Two corrections, both chosen on the validation faces (PublicTest for a file
with a Usage column, FER+'s majority labels with --ferplus), and both written
into the output layer's kernel and bias (balance.fold_into_output), so the
saved model gives the corrected probabilities everywhere (.keras, its ONNX
copy, predict.py, emotions.py, serve.py, the page) with no side file:

- a shift of the class prior: the bias moves by -tau log(prior), the prior
  being the training targets' class shares. Positive tau reads rare classes
  more often; negative tau gives a model trained balanced some of the prior
  back. --tau auto takes, on a grid from -1 to 1, the best mean class recall
  among the values within --within of the grid's best accuracy.
- a temperature T (logits / T), fitted by the negative log-likelihood.

Both are fitted on the probabilities the scripts show: each TTA view
corrected, then averaged, as the folded model does.
"""
import os

import numpy as np

from ferkit.programs import cli
from ferkit.data import ferplus
from ferkit.train.balance import adjust_probabilities, class_prior, fit_temperature
from ferkit.data.fer2013 import NUM_CLASSES
from ferkit.infer.metrics import summary, summary_line

TAU_GRID = np.round(np.arange(-1.0, 1.0001, 0.1), 2)


def build_parser():
    p = cli.parser(__doc__)
    p.add_argument("--model", required=True, help="saved .keras model to calibrate")
    p.add_argument("--train", default="data/fer2013.csv.gz",
                   help="the training CSV: its training faces give the prior, its validation faces fit the corrections")
    p.add_argument("--ferplus", default=None, metavar="FER2013NEW_CSV", help="FER+'s votes, for an 8-class FER+ model")
    p.add_argument("--label-mode", choices=ferplus.LABEL_MODES, default="crossentropy",
                   help="with --ferplus, the training targets whose class shares are the prior (as the model trained)")
    p.add_argument("--tau", default="auto", help="prior shift: a number, or auto (see above)")
    p.add_argument("--within", type=float, default=0.01, help="with --tau auto: accuracy the shift may cost")
    p.add_argument("--tta", choices=("none", "flip"), default="flip", help="views the scripts average (emotions.py: flip)")
    p.add_argument("--out", required=True, help="where the calibrated model goes (.keras)")
    p.add_argument("--float16", action="store_true", help="store the weights in float16, as the released models are")
    cli.add_split_flags(p)
    return p


def views_of(model, images, tta):
    """The model's probabilities on each TTA view, uncorrected: [(N, K), ...]."""
    from ferkit.infer.inference import Predictor, tta_views

    predict = Predictor([model])
    return [predict(np.ascontiguousarray(view)) for view in tta_views(images, tta)]


def corrected(views, temperature=1.0, prior=None, tau=0.0):
    """What the folded model gives: each view corrected, then averaged."""
    return np.mean([adjust_probabilities(v, temperature, prior, tau) for v in views], axis=0)


def choose_tau(views, labels, prior, num_classes, within):
    """The grid's best mean recall among shifts within `within` of its best accuracy."""
    rows = [(tau, summary(corrected(views, 1.0, prior, tau), labels, num_classes)) for tau in TAU_GRID]
    best_accuracy = max(s["accuracy"] for _, s in rows)
    eligible = [(s["mean_recall"], -abs(tau), tau) for tau, s in rows if s["accuracy"] >= best_accuracy - within]
    chosen = max(eligible)[2]
    for tau, s in rows:
        mark = " <- chosen" if tau == chosen else ""
        print(f"  tau {tau + 0.0:+.1f}: accuracy {s['accuracy']:.4f}, mean class recall {s['mean_recall']:.4f}{mark}")
    return float(chosen)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.out.endswith(".keras"):
        raise cli.UsageError(f"--out {args.out}: a model file name must end in .keras")
    cli.require_keras_model(args.model, "calibrate.py changes a Keras model's last layer")
    if args.tau != "auto":
        try:
            args.tau = float(args.tau)
        except ValueError:
            raise cli.UsageError(f"--tau {args.tau}: give a number or auto") from None
    from ferkit.train.training import load_split

    train_set, val_set, _ = load_split(args.train, args.ferplus, args.label_mode, args.val_split, args.split_seed,
                                       args.limit)
    num_classes = ferplus.NUM_CLASSES if args.ferplus else NUM_CLASSES
    prior = class_prior(train_set.targets if train_set.targets is not None else train_set.labels, num_classes)
    print("prior (training class shares): " + ", ".join(f"{p:.4f}" for p in prior))

    from ferkit.train.balance import fold_into_output
    from ferkit.nets.card import fingerprint, git_commit, read_card
    from ferkit.nets.models import load_model, save_float16, save_model

    model = load_model(args.model, "float32")
    if len(model.class_names) != num_classes:
        raise cli.UsageError(f"--model {args.model} predicts {len(model.class_names)} classes; "
                             f"the data has {num_classes}" + ("" if args.ferplus else " (an 8-class model needs --ferplus)"))
    views = views_of(model, val_set.images, args.tta)
    labels = val_set.labels
    print(f"as it is, on {len(labels)} validation faces (TTA {args.tta}): "
          f"{summary_line(summary(corrected(views), labels, num_classes))}")
    if args.tau == "auto":
        print(f"prior shift: the best mean class recall within {args.within:g} of the best accuracy")
        tau = choose_tau(views, labels, prior, num_classes, args.within)
    else:
        tau = args.tau
    shifted = [adjust_probabilities(v, 1.0, prior, tau) for v in views]
    temperature = fit_temperature(shifted, labels)
    final = corrected(views, temperature, prior, tau)
    print(f"corrections: tau {tau:+.2f}, temperature {temperature:.4f}; after: "
          f"{summary_line(summary(final, labels, num_classes))}")

    fold_into_output(model, temperature, prior, tau)
    card = {"made_by": "calibrate.py", "commit": git_commit(), "source": fingerprint(args.model),
            "source_card": read_card(args.model),
            "calibration": {"tau": round(float(tau), 4), "temperature": round(float(temperature), 6),
                            "tta": args.tta, "chosen_on": f"{len(labels)} validation faces of {os.path.basename(args.train)}"},
            "scores": {k: round(float(v), 6) for k, v in summary(final, labels, num_classes).items()
                       if isinstance(v, (int, float))}}
    (save_float16 if args.float16 else save_model)(model, args.out, card=card)
    saved = load_model(args.out, "float32")
    difference = np.abs(corrected(views_of(saved, val_set.images, args.tta)) - final).max()
    print(f"saved {args.out}; its probabilities match the corrected ones within {difference:.1e}")


if __name__ == "__main__":
    cli.run(main)
