"""Train the seed CNN on FER2013.

    python train_cnn.py --train data/train.csv                 # the seed's 250-epoch recipe (GPU)
    python train_cnn.py --preset fast --precision auto --train data/train.csv   # about an hour, 2 CPU cores with BF16
    python train_cnn.py --preset long --precision auto --train data/train.csv   # about 2 hours there
    python train_cnn.py --preset ferplus --train data/fer2013.csv --ferplus data/fer2013new.csv --label-mode crossentropy

Keeps the best model by validation accuracy in --out; rerun the same command
after an interruption to resume from the last finished epoch.
"""
from ferkit import cli
from ferkit import recipes
from ferkit import training


def main(argv=None):
    parser = recipes.build_parser(__doc__.splitlines()[0], "cnn", ["seed", "fast", "long", "ferplus"], "seed")
    args = parser.parse_args(argv)
    training.train(args, "cnn", "CNN")


if __name__ == "__main__":
    cli.run(main)
