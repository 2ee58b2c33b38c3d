"""config.TrainConfig: every training flag has a typed field, so the library
reads a value and no flag is dropped on the way."""
import dataclasses

import pytest

from ferkit.train import recipes
from ferkit.programs import train_flags
from ferkit.train.config import TrainConfig


def parser():
    import train_cnn

    p = train_flags.build_parser("t", "cnn", list(recipes.PRESETS), "seed")
    p.add_argument("--arch", choices=sorted(train_cnn.ARCHITECTURES), default="cnn")
    train_flags.add_backbone_flags(p)
    return p


def test_every_training_flag_has_a_field():
    flags = {a.dest for a in parser()._actions} - {"help", "verbose"}
    assert flags == {f.name for f in dataclasses.fields(TrainConfig)}


def test_the_config_holds_the_flags_values_and_cannot_change():
    args = parser().parse_args(["--train", "a.csv", "--out", "m.keras", "--arch", "resnet", "--erase", "0.5", "0.25",
                                "--balance", "logit-adjust", "--select", "mean_recall", "--width", "0.5"])
    config = TrainConfig.from_args(args)
    assert (config.train, config.out, config.arch, config.erase, config.balance, config.select, config.width) == \
        ("a.csv", "m.keras", "resnet", (0.5, 0.25), "logit-adjust", "mean_recall", 0.5)
    assert TrainConfig.from_args(args, arch="dnn").arch == "dnn"  # A script's own value wins.
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3
    recipe = recipes.settings_from(config)
    assert recipe["erase"] == (0.5, 0.25) and recipe["balance"] == "logit-adjust"
    # The recipe is typed and frozen too, passed whole; a change is a new recipe.
    assert isinstance(recipe, recipes.Recipe) and recipe.erase == (0.5, 0.25)
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.lr = 1.0
    assert recipe.replace(lr=2e-3).lr == 2e-3 and recipe.lr == recipes.PRESETS["seed"]["lr"]
    assert set(recipe.as_dict()) >= set(recipes.PRESETS["seed"])


def test_a_config_made_by_hand_trains_from_its_defaults():
    config = TrainConfig(train="a.csv", out="m.keras")
    assert (config.preset, config.arch, config.label_mode, config.strategy) == ("seed", "cnn", "majority", "auto")
    assert recipes.settings_from(config)["epochs"] == recipes.PRESETS["seed"]["epochs"]
