"""Training recipes (the presets): what a run does, before any data or
TensorFlow is touched. settings_from checks a configuration's values (the
flags, train_flags.py) and gives the recipe a run follows."""
import dataclasses
from dataclasses import dataclass

from ferkit.errors import UsageError

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
            raise UsageError("--erase needs a probability in (0, 1] and a largest area in (0.02, 1), or 0 0 for none")
    recipe.setdefault("head_epochs", 0)
    recipe.setdefault("backbone_lr", 1.0)
    recipe.setdefault("freeze_bn", False)
    if recipe["head_epochs"] < 0 or not 0 <= recipe["backbone_lr"] <= 10:
        raise UsageError("--head-epochs must be 0 or more, --backbone-lr a share in [0, 10]")
    if recipe["weight_decay"] < 0:
        raise UsageError("--weight-decay must be 0 (off) or positive")
    if args.mixup is not None and args.mixup < 0:
        raise UsageError("--mixup must be 0 (off) or a positive alpha")
    recipe["mixup"] = recipe["mixup"] or None  # --mixup 0 means off.
    if args.photometric is not None:
        if not 0 <= args.photometric <= 1:
            raise UsageError(f"--photometric {args.photometric:g}: a probability in [0, 1], 0 for none")
        recipe["photometric"] = args.photometric or None
    if args.no_augment:
        recipe["augment"] = recipe["erase"] = recipe["mixup"] = recipe["photometric"] = None
    if recipe["epochs"] < 1 or recipe["batch_size"] < 1 or recipe["lr"] <= 0:
        raise UsageError("--epochs, --batch-size and --lr must be positive")
    if not args.out.endswith(".keras"):
        raise UsageError(f"--out {args.out}: a model file name must end in .keras")
    if args.limit is not None and args.limit < 2:
        raise UsageError("--limit must be at least 2")
    if not 0 < args.width <= 4:
        raise UsageError(f"--width {args.width:g}: the width multiplier must be above 0 and at most 4")
    if args.tau < 0:
        raise UsageError("--tau must be 0 or positive")
    if not 0 < args.teacher_weight <= 1:
        raise UsageError(f"--teacher-weight {args.teacher_weight:g}: a share in (0, 1]")
    if args.teacher and args.ferplus and args.label_mode in ("probability", "multitarget"):
        raise UsageError(f"--teacher trains on soft targets; --label-mode {args.label_mode} draws or picks "
                             "one class (use crossentropy or majority)")
    if args.balance != "none" and args.ferplus and args.label_mode == "multitarget":
        raise UsageError("--label-mode multitarget does not go with --balance (its loss picks a class itself)")
    recipe.update(balance=args.balance, tau=args.tau)
    return Recipe(**recipe)


@dataclass(frozen=True)
class Recipe:
    """What a run does, typed and frozen: a preset with the flags' values
    (settings_from), passed whole to the optimizer, the loss, the data
    pipeline and the model card. It reads like the preset dicts it is made
    from (recipe["lr"], recipe.get("tau")), so code that takes either works."""
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    weight_decay: float
    schedule: str
    warmup_epochs: int
    label_smoothing: float
    augment: tuple | None  # (max rotation in degrees, max shift, max zoom), with random flips.
    erase: tuple | None  # (probability, largest area).
    mixup: float | None  # Beta(alpha, alpha).
    photometric: float | None  # Each picture-quality change's probability.
    balance: str = "none"
    tau: float = 1.0
    head_epochs: int = 0  # A pretrained backbone: epochs of the head alone,
    backbone_lr: float = 1.0  # then its rate as a share of the head's,
    freeze_bn: bool = False  # and its BatchNorm statistics frozen or not.

    def __getitem__(self, key):
        return getattr(self, key)

    def get(self, key, default=None):
        return getattr(self, key, default)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def as_dict(self):
        return dataclasses.asdict(self)
