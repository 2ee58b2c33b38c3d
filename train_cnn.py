"""Train the seed CNN, or the residual network made to generalise, on FER2013 or FER+.

    python train_cnn.py --train data/train.csv                 # the seed's 250-epoch recipe (GPU)
    python train_cnn.py --preset fast --precision auto --train data/train.csv   # about an hour, 2 CPU cores with BF16
    python train_cnn.py --preset long --precision auto --train data/train.csv   # about 2 hours there
    python train_cnn.py --preset ferplus --train data/fer2013.csv --ferplus data/fer2013new.csv --label-mode crossentropy
    python train_cnn.py --arch faceres --preset backbone --input-size 112 --train data/fer2013.csv \\
        --ferplus data/fer2013new.csv --label-mode crossentropy --balance logit-adjust --select mean_recall
    python train_cnn.py --arch resnet --preset robust --train data/fer2013.csv --ferplus data/fer2013new.csv \\
        --label-mode crossentropy --balance logit-adjust --select mean_recall --out runs/resnet/model.keras

Keeps the best model by validation accuracy (or --select) in --out; rerun the
same command after an interruption to resume from the last finished epoch
(with --resume, a missing checkpoint is an error instead of a fresh start).
"""
from ferkit.programs import cli
from ferkit.programs import train_flags
from ferkit.train import training
from ferkit.train.config import TrainConfig

# --arch: the seed's CNN (the reproduction), the small ResNet (models.build_resnet)
# or the pretrained face-recognition MobileNet with a new head (backbones.py).
ARCHITECTURES = {"cnn": "CNN", "resnet": "ResNet", "faceres": "faceres MobileNet"}


def main(argv=None):
    parser = train_flags.build_parser(__doc__.splitlines()[0], "cnn",
                                  ["seed", "fast", "long", "ferplus", "robust", "backbone"], "seed")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="cnn",
                        help="cnn: the seed's CNN; resnet: a pre-activation ResNet with a global-average-pooled head; "
                             "faceres: a MobileNet pretrained for face recognition on VGGFace2, with a new head "
                             "(use --preset backbone)")
    train_flags.add_backbone_flags(parser)
    args = parser.parse_args(argv)
    training.train(TrainConfig.from_args(args), ARCHITECTURES[args.arch])


if __name__ == "__main__":
    cli.run(main)
