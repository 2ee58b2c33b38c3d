"""Train the seed DNN (four Dense 1024 + BatchNorm layers) on FER2013.

    python train_dnn.py --train data/train.csv

Same flags, checkpointing and resume as train_cnn.py.
"""
from ferkit.programs import cli
from ferkit.programs import train_flags
from ferkit.train import training
from ferkit.train.config import TrainConfig


def main(argv=None):
    parser = train_flags.build_parser(__doc__.splitlines()[0], "dnn", ["dnn"], "dnn")
    args = parser.parse_args(argv)
    training.train(TrainConfig.from_args(args, arch="dnn"), "DNN")


if __name__ == "__main__":
    cli.run(main)
