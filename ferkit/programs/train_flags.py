"""The training scripts' flags (train_cnn.py, train_dnn.py): every default
shows in --help; recipes.settings_from checks their values."""
import argparse

from ferkit.programs import cli
from ferkit.data import fer2013
from ferkit.data import ferplus
from ferkit.train.balance import BALANCE_MODES
from ferkit.train.distribute import STRATEGIES
from ferkit.train.recipes import OPTIMIZERS, SELECT_BY


def build_parser(description, model_name, presets, default_preset):
    """Flags shared by both training scripts; every default shows in --help."""
    p = cli.parser(description)
    p.add_argument("--preset", choices=presets, default=default_preset, help="training recipe (see ferkit/train/recipes.py)")
    p.add_argument("--train", default="data/train.csv", help="training CSV, any Kaggle FER2013 layout, .gz ok")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="batch size of one replica (device or worker); the global batch is this times the replicas "
                        "(default: the preset's)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the preset's)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help="adam, adamw, or sgd (Nesterov momentum 0.9) (default: the preset's)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="decoupled weight decay: each step shrinks the weights by lr x this; 0 for none "
                        "(default: the preset's)")
    p.add_argument("--mixup", type=float, default=None, metavar="ALPHA",
                   help="mixup with Beta(ALPHA, ALPHA) weights, 0 for none (default: the preset's)")
    p.add_argument("--erase", type=float, nargs=2, default=None, metavar=("PROBABILITY", "MAX_AREA"),
                   help="random erasing: the share of faces that get a box filled with their mean, and the box's "
                        "largest share of the face (boxes start at 0.02); 0 0 for none (default: the preset's)")
    p.add_argument("--photometric", type=float, default=None, metavar="PROBABILITY",
                   help="picture-quality augmentation: the probability of each change (contrast, gamma, brightness, "
                        "a small face, noise), 0 for none (default: the preset's)")
    p.add_argument("--ferplus", default=None, metavar="FER2013NEW_CSV",
                   help="train on FER+'s ten-annotator labels (8 classes): fer2013new.csv, joined row by row to "
                        "--train, which must then be fer2013.csv or icml_face_data.csv; PublicTest validates")
    p.add_argument("--label-mode", choices=ferplus.LABEL_MODES, default="majority",
                   help="with --ferplus, the targets FER+'s votes give (validation always uses majority labels)")
    p.add_argument("--balance", choices=BALANCE_MODES, default="none",
                   help="train for every class: logit-adjust (the loss sees log p + tau log prior), reweight "
                        "(faces weighted by prior^-tau) or sample (classes drawn equally often); see balance.py")
    p.add_argument("--tau", type=float, default=1.0, help="strength of --balance logit-adjust or reweight")
    p.add_argument("--width", type=float, default=1.0,
                   help="multiplies every layer's filters and units: 0.5 gives a quarter of the weights and about a "
                        "quarter of the arithmetic, for a smaller, faster model")
    p.add_argument("--select", choices=SELECT_BY, default="accuracy",
                   help="which validation score picks the epoch that is saved: accuracy or mean_recall "
                        "(mean class recall)")
    cli.add_split_flags(p)
    p.add_argument("--seed", type=int, default=fer2013.SPLIT_SEED, help="seed for shuffling, augmentation and weights")
    p.add_argument("--score-test", action="store_true",
                   help="after training, score the saved model once on the held-out PrivateTest part, if the file "
                        "has one (a figure to report, never one to choose by)")
    p.add_argument("--no-augment", action="store_true", help="turn data augmentation off")
    p.add_argument("--out", default=f"models/{model_name}.keras", help="where the best model (by validation accuracy) goes")
    p.add_argument("--log", default=None, help="per-epoch CSV log (default: OUT with .log.csv)")
    # Beside the model, like the log, so that a training run never overwrites
    # the report's figures; the report's commands name their figure.
    p.add_argument("--curves", default=None, help="training-curve figure, '' for none (default: OUT with _training.png)")
    p.add_argument("--deterministic", action="store_true", help="deterministic ops: bit-identical reruns on CPU, slower")
    p.add_argument("--teacher", action="append", default=None, metavar="MODEL",
                   help="distil: train on this saved model's probabilities for the training faces (repeat for an "
                        "ensemble: their mean), mixed with the labels by --teacher-weight; see distill.py")
    p.add_argument("--teacher-weight", type=float, default=1.0,
                   help="with --teacher: the teachers' share of the targets, the rest the faces' own labels")
    p.add_argument("--resume", action="store_true",
                   help="go on from OUT.resume, the last finished epoch's checkpoint, and stop with an error if there "
                        "is none (a mistyped --out would start over); without it a run resumes when the checkpoint is there")
    p.add_argument("--init-from", default=None,
                   help="start from this saved model's weights (a warm restart: new schedule, fresh optimizer); from a "
                        "model of the same network with other classes (FER+ into FER2013), all but its output layer")
    p.add_argument("--strategy", choices=STRATEGIES, default="auto",
                   help="tf.distribute strategy; --batch-size is per replica (see distribute.py)")
    p.add_argument("--no-cache", action="store_true", help="do not keep a parsed copy of the CSV (see csvread.cache_dir)")
    # Training defaults to auto (bfloat16 where the hardware has it): over the
    # full fast preset (50 epochs, seed 0) bfloat16 ended within a point of
    # float32 on validation (report/README.md, section 2).
    cli.add_precision_flag(p)
    return p


def add_backbone_flags(p):
    """The flags of a pretrained backbone (--arch faceres); each defaults to the preset's value."""
    p.add_argument("--input-size", type=int, default=112,
                   help="with a backbone: the side, in pixels, the 48x48 face is resized to")
    p.add_argument("--backbone-weights", default=None,
                   help="with a backbone: its converted weights (default: models/backbones/ARCH.npz, written by "
                        "models/convert_backbones.py)")
    p.add_argument("--head-epochs", type=int, default=None,
                   help="with a backbone: epochs in which only the new head learns (default: the preset's)")
    p.add_argument("--backbone-lr", type=float, default=None, metavar="SHARE",
                   help="with a backbone: its learning rate as a share of the head's (default: the preset's)")
    p.add_argument("--freeze-bn", action=argparse.BooleanOptionalAction, default=None,
                   help="with a backbone: keep its BatchNorm statistics as they are (inference mode) "
                        "(default: the preset's)")
