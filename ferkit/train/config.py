"""What a training run is told, typed: TrainConfig is built from the flags
at the top (train_cnn.py, train_dnn.py, bench.py) or by hand (calibrate.py,
tests), and it is all the library's training code reads. Fields left at
None take the preset's value (recipes.settings_from)."""
import argparse
from dataclasses import asdict, dataclass, fields

from ferkit.data.fer2013 import SPLIT_SEED, VAL_SPLIT


@dataclass(frozen=True)
class TrainConfig:
    train: str  # Training CSV, any Kaggle FER2013 layout.
    out: str  # Where the best model goes (.keras).
    arch: str = "cnn"  # models.ARCHITECTURES: cnn, dnn, resnet, faceres.
    preset: str = "seed"  # recipes.PRESETS
    # The recipe's values, where the flags override the preset's.
    epochs: int | None = None
    batch_size: int | None = None  # Of one replica.
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    mixup: float | None = None
    erase: tuple[float, float] | None = None
    photometric: float | None = None
    no_augment: bool = False
    # The data and its labels.
    ferplus: str | None = None  # fer2013new.csv, joined row by row to train.
    label_mode: str = "majority"
    balance: str = "none"
    tau: float = 1.0
    val_split: float = VAL_SPLIT
    split_seed: int = SPLIT_SEED
    limit: int | None = None
    no_cache: bool = False
    # The model and the run.
    width: float = 1.0
    select: str = "accuracy"
    seed: int = SPLIT_SEED
    score_test: bool = False
    log: str | None = None
    curves: str | None = None  # None: beside the model; "": none.
    deterministic: bool = False
    init_from: str | None = None
    resume: bool = False  # Insist on going on from the checkpoint (a run resumes from one anyway when it is there).
    teacher: tuple[str, ...] = ()  # Saved models whose mean probabilities the run is taught by (distill.py).
    teacher_weight: float = 1.0  # The teachers' share of the targets; the rest is the faces' own labels.
    # A pretrained backbone (--arch faceres; backbones.py).
    input_size: int = 112  # The side the 48x48 face is resized to.
    backbone_weights: str | None = None  # The converted weights; None: models/backbones/ARCH.npz.
    head_epochs: int | None = None  # Epochs of the head alone, the backbone frozen.
    backbone_lr: float | None = None  # The backbone's learning rate as a share of the head's.
    freeze_bn: bool | None = None  # The backbone's BatchNorm statistics frozen (inference mode).
    strategy: str = "auto"
    precision: str = "auto"

    @classmethod
    def from_args(cls, args: argparse.Namespace, **values):
        """The configuration of parsed flags (those a run reads; --verbose
        and the like stay behind), with values given here taking precedence."""
        names = {f.name for f in fields(cls)}
        given = {k: v for k, v in vars(args).items() if k in names}
        if given.get("erase") is not None:
            given["erase"] = tuple(given["erase"])
        given["teacher"] = tuple(given.get("teacher") or ())
        return cls(**{**given, **values})

    def as_dict(self):
        return asdict(self)
