"""Training recipes (the presets) and the training scripts' flags: what a
run does, before any data or TensorFlow is touched. settings_from checks the
flags and gives the recipe a run follows."""
import argparse

from ferkit import cli
from ferkit import fer2013
from ferkit import ferplus
from ferkit.balance import BALANCE_MODES
from ferkit.distribute import STRATEGIES

SELECT_BY = ("accuracy", "mean_recall")


# Training recipes. Flags given on the command line override these values.
# augment: (max rotation in degrees, max shift as a fraction, max zoom), with a
# random horizontal flip whenever augment is on. erase: (probability, largest
# fraction of the face) of random erasing, a cutout box filled with the face's
# mean grey, applied after the affine; None turns it off. mixup: the alpha of
# mixup's Beta(alpha, alpha) mixing weights, or None for no mixup.
# photometric: the probability of each picture-quality change (contrast,
# gamma, brightness, a small face, noise; augment.random_photometric), or None.
PRESETS = {
    # The seed report's recipe: Adam at a constant 1e-3 for 250 epochs.
    "seed": dict(epochs=250, batch_size=128, optimizer="adam", lr=1e-3, weight_decay=0.0,
                 schedule="constant", warmup_epochs=0, label_smoothing=0.0, augment=(10, 0.1, 0.1),
                 erase=None, mixup=None, photometric=None),
    # Speed to accuracy on a CPU: AdamW, one warm-up epoch then cosine decay to
    # zero, label smoothing; 50 epochs, about an hour on 2 cores in bfloat16.
    # What it scores, and the variants tried against it: report/README.md, section 1.
    "fast": dict(epochs=50, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=0.05,
                 schedule="cosine", warmup_epochs=1, label_smoothing=0.1, augment=(10, 0.1, 0.1),
                 erase=None, mixup=None, photometric=None),
    # The DNN: the same layers as the seed, regularized by dropout (in the
    # model), augmentation, label smoothing and decoupled weight decay.
    "dnn": dict(epochs=40, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=0.05,
                schedule="cosine", warmup_epochs=1, label_smoothing=0.1, augment=(8, 0.08, 0.08),
                erase=None, mixup=None, photometric=None),
}
# The fast recipe stretched to 120 epochs (about 2 hours there): the released
# FER2013 model's recipe (report/README.md, section 1).
PRESETS["long"] = dict(PRESETS["fast"], epochs=120, warmup_epochs=2)
# FER+ (--ferplus): the long recipe cut to 90 epochs, 1-2 hours on 2 cores in
# bfloat16, by CPU (report/README.md, section 8).
PRESETS["ferplus"] = dict(PRESETS["long"], epochs=90)
# Faces as people make them (--arch resnet, --ferplus): wider turns, framing
# and zoom than FER2013's, random erasing (an occluded eye or mouth), the
# picture-quality changes of photometric, and lighter label smoothing, since
# FER+'s vote shares are soft already. 25 epochs, about 80 minutes for the
# ResNet on 2 cores with AVX512-BF16; what each change is for: bench.py
# shifts (report/README.md, section 11).
PRESETS["robust"] = dict(PRESETS["ferplus"], epochs=25, augment=(15, 0.12, 0.15), erase=(0.5, 0.25),
                         photometric=0.2, label_smoothing=0.05)

# A pretrained face-recognition backbone (--arch faceres): the robust
# recipe's augmentation, one epoch of the new head alone, then everything,
# the backbone at 0.1 of the head's rate (AdamW, warm-up into cosine decay;
# at 0.3 its features collapsed within 32 steps, report section 12.1),
# no weight decay on it (optim.fine_tuning_adamw), its BatchNorm frozen:
# faceres has near-constant channels (mean ~100, variance ~1e-3), and
# Keras' batch variance, E[x^2] - E[x]^2 in float32, loses them, so a
# BatchNorm that trains saturates every ReLU6 and the features go constant
# (report/README.md, section 12.1).
PRESETS["backbone"] = dict(PRESETS["robust"], epochs=15, head_epochs=1, backbone_lr=0.1, freeze_bn=True)


OPTIMIZERS = ("adam", "adamw", "sgd")


def build_parser(description, model_name, presets, default_preset):
    """Flags shared by both training scripts; every default shows in --help."""
    p = cli.parser(description)
    p.add_argument("--preset", choices=presets, default=default_preset, help="training recipe (see ferkit/recipes.py)")
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
    p.add_argument("--init-from", default=None, help="start from this saved model's weights (a warm restart: new schedule, fresh optimizer)")
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


def settings_from(args):
    """The preset's recipe with any overrides applied; args: a
    config.TrainConfig (anything with its fields: parsed flags too)."""
    recipe = dict(PRESETS[args.preset])
    for key in ("epochs", "batch_size", "lr", "mixup", "optimizer", "weight_decay", "head_epochs", "backbone_lr",
                "freeze_bn"):
        if getattr(args, key, None) is not None:  # (train_dnn.py's flags have no backbone's.)
            recipe[key] = getattr(args, key)
    if args.erase is not None:
        probability, max_area = args.erase
        if probability == 0 or max_area == 0:
            recipe["erase"] = None
        elif 0 < probability <= 1 and 0.02 < max_area < 1:
            recipe["erase"] = (probability, max_area)
        else:
            raise cli.UsageError("--erase needs a probability in (0, 1] and a largest area in (0.02, 1), or 0 0 for none")
    recipe.setdefault("head_epochs", 0)
    recipe.setdefault("backbone_lr", 1.0)
    recipe.setdefault("freeze_bn", False)
    if recipe["head_epochs"] < 0 or not 0 <= recipe["backbone_lr"] <= 10:
        raise cli.UsageError("--head-epochs must be 0 or more, --backbone-lr a share in [0, 10]")
    if recipe["weight_decay"] < 0:
        raise cli.UsageError("--weight-decay must be 0 (off) or positive")
    if args.mixup is not None and args.mixup < 0:
        raise cli.UsageError("--mixup must be 0 (off) or a positive alpha")
    recipe["mixup"] = recipe["mixup"] or None  # --mixup 0 means off.
    if args.photometric is not None:
        if not 0 <= args.photometric <= 1:
            raise cli.UsageError(f"--photometric {args.photometric:g}: a probability in [0, 1], 0 for none")
        recipe["photometric"] = args.photometric or None
    if args.no_augment:
        recipe["augment"] = recipe["erase"] = recipe["mixup"] = recipe["photometric"] = None
    if recipe["epochs"] < 1 or recipe["batch_size"] < 1 or recipe["lr"] <= 0:
        raise cli.UsageError("--epochs, --batch-size and --lr must be positive")
    if not args.out.endswith(".keras"):
        raise cli.UsageError(f"--out {args.out}: a model file name must end in .keras")
    if args.limit is not None and args.limit < 2:
        raise cli.UsageError("--limit must be at least 2")
    if not 0 < args.width <= 4:
        raise cli.UsageError(f"--width {args.width:g}: the width multiplier must be above 0 and at most 4")
    if args.tau < 0:
        raise cli.UsageError("--tau must be 0 or positive")
    if not 0 < args.teacher_weight <= 1:
        raise cli.UsageError(f"--teacher-weight {args.teacher_weight:g}: a share in (0, 1]")
    if args.teacher and args.ferplus and args.label_mode in ("probability", "multitarget"):
        raise cli.UsageError(f"--teacher trains on soft targets; --label-mode {args.label_mode} draws or picks "
                             "one class (use crossentropy or majority)")
    if args.balance != "none" and args.ferplus and args.label_mode == "multitarget":
        raise cli.UsageError("--label-mode multitarget does not go with --balance (its loss picks a class itself)")
    recipe.update(balance=args.balance, tau=args.tau)
    return recipe
