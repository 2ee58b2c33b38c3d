"""Benchmarks that print figures: training (benchmarks/bench_training.py),
inference (benchmarks/bench_inference.py) and the page
(benchmarks/bench_page.py), one mode each.

    python bench.py csv --train data/train.csv      # load_csv vs pandas' C parser
    python bench.py throughput                      # project loop vs bare model.fit, FLOP rate
    python bench.py memory --train data/train.csv --test data/test.csv
    python bench.py predict --test data/test.csv --model models/cnn.keras
    python bench.py epochs --train data/train.csv --epochs 3   # seconds per epoch (e.g. on a GPU box)
    python bench.py precision --train data/train.csv            # train_cnn.py float32 vs bfloat16 images/s
    python bench.py breakdown --precision bfloat16              # where an epoch's seconds go
    python bench.py crop --train data/train.csv --detector haar # detector box vs FER2013's crop
    python bench.py detectors --train data/train.csv            # BlazeFace vs Haar vs MTCNN on pasted real faces
    python bench.py rotation --train data/fer2013.csv           # turned faces: aligned crops against upright ones
    python bench.py emotions                                    # emotions.py, Keras and ONNX: photo ms, video frames/s
    python bench.py runtimes --faces 4096                       # ONNX Runtime vs TensorFlow: images/s, start-up
    python bench.py parity --train data/train.csv               # a .keras model vs its ONNX copy on validation
    python bench.py serve --clients 4 --seconds 20              # a running serve.py: frames/s, p50/p95 latency
    python bench.py shifts --train data/fer2013.csv.gz --ferplus data/fer2013new.csv --model A.onnx --model B.onnx
                                                                # PublicTest under framing, blur, JPEG, occlusion...
    python bench.py compare --train data/fer2013.csv.gz --ferplus data/fer2013new.csv --model A.onnx --model B.onnx
                                                                # PublicTest: B - A with bootstrap intervals
    python bench.py closeups --train data/train.csv             # faces that fill the picture: share found
    python bench.py jitter --train data/train.csv --faces 12    # steady clips: top-class changes a second, lag
    python bench.py page --seconds 10                           # the page in Chromium, both modes: start-up, frames/s

Timings on shared machines are noisy: compare the ratios printed by one run.
"""
from benchmarks import bench_faces
from benchmarks import bench_inference
from benchmarks import bench_page
from benchmarks import bench_training
from ferkit.programs import cli

# Every flag a benchmark may take, defined once: name -> (argparse keywords).
FLAGS = {
    "train": dict(default="data/train.csv", help="training CSV"),
    "test": dict(default="data/test.csv", help="test CSV"),
    "model": dict(action="append", default=None,
                  help="a model (.keras or .onnx); shifts and compare: repeat it for several, and join paths "
                       "with '+' to score their mean as one model (default: models/fer2013_cnn.keras)"),
    "ferplus": dict(default=None, help="FER+'s fer2013new.csv, joined to --train (fer2013.csv)"),
    "draws": dict(type=int, default=2000, help="bootstrap draws"),
    "onnx": dict(default=None, help="ONNX model (default: the released FER2013 model's copy)"),
    "repeat": dict(type=int, default=3, help="timings per parser"),
    "images": dict(type=int, default=3072, help="images per epoch"),
    "epochs": dict(type=int, default=3, help="epochs (the first is not timed)"),
    "batch-size": dict(type=int, default=128, help="batch size"),
    "preset": dict(default="fast", help="recipe (optimizer, augmentation)"),
    "arch": dict(dest="model_arch", default="cnn", choices=["cnn", "dnn", "resnet", "faceres"],
                 help="architecture (faceres: random weights, the pretrained ones change no timing)"),
    "limit": dict(type=int, default=6000, help="training rows"),
    "precision": dict(default="float32", help="precision of the models run"),
    "detector": dict(default="haar", help="detector"),
    "detector-list": dict(default="blazeface,haar,mtcnn", help="detectors to compare"),
    "faces": dict(type=int, default=600, help="faces"),
    "pad": dict(type=int, default=0, help="edge pixels around each pasted 48x48 face"),
    "angles": dict(default="0,15,-15,30,-30", help="angles in degrees"),
    "photos": dict(type=int, default=31, help="photos"),
    "frames": dict(type=int, default=150, help="video frames (jitter: of each clip)"),
    "url": dict(default="http://127.0.0.1:8000", help="a running serve.py"),
    "clients": dict(type=int, default=4, help="concurrent clients"),
    "seconds": dict(type=float, default=20, help="serve: how long to send frames; page: seconds of rate lines a mode"),
    "photo": dict(default=None, help="what the fake camera shows (default: matplotlib's Grace Hopper photo)"),
    "detect-every": dict(default="1,5", help="full detector passes every this many frames, the faces followed "
                                            "in between (several joined by commas)"),
    "serve-model": dict(default=None, help="the .onnx model serve.py runs (default: its own)"),
}

# mode -> (function, what it measures, its flags).
MODES = {
    # Training: what an epoch costs, and what feeds it.
    "csv": (bench_training.bench_csv, "load_csv against pandas' C parser", ["train", "repeat"]),
    "throughput": (bench_training.bench_throughput, "the project's loop against bare model.fit, FLOP rate",
                   ["images", "epochs", "batch-size", "preset", "arch", "precision"]),
    "breakdown": (bench_training.bench_breakdown, "where an epoch's seconds go",
                  ["images", "epochs", "batch-size", "precision"]),
    "epochs": (bench_training.bench_epochs, "seconds per epoch of train_cnn.py", ["train", "epochs"]),
    "precision": (bench_training.bench_precision, "train_cnn.py in float32 against bfloat16",
                  ["train", "epochs", "limit"]),
    "memory": (bench_training.bench_memory, "peak memory of training and predict.py", ["train", "test"]),
    # Inference: scripts, detectors, runtimes, the server.
    "predict": (bench_inference.bench_predict, "predict.py end to end", ["test", "model"]),
    "crop": (bench_faces.bench_crop, "a detector's box against FER2013's crop", ["train", "detector", "faces"]),
    "detectors": (bench_faces.bench_detectors, "BlazeFace, Haar and MTCNN on pasted real faces",
                  ["train", "model", "detector-list", "faces", "pad"]),
    "rotation": (bench_faces.bench_rotation, "turned faces: aligned crops against upright ones",
                 ["train", "model", "faces", "angles"]),
    "emotions": (bench_inference.bench_emotions, "emotions.py: a photo's milliseconds, a video's frames/s",
                 ["model", "onnx", "photos", "frames"]),
    "runtimes": (bench_inference.bench_runtimes, "ONNX Runtime against TensorFlow", ["model", "onnx", "faces"]),
    "parity": (bench_inference.bench_parity, "a .keras model against its ONNX copy", ["train", "model", "onnx"]),
    "serve": (bench_inference.bench_serve, "a running serve.py: frames/s, latency", ["url", "clients", "seconds"]),
    "shifts": (bench_inference.bench_shifts, "PublicTest under framing, blur, JPEG, occlusion...",
               ["train", "ferplus", "model", "precision"]),
    "compare": (bench_inference.bench_compare, "two models on PublicTest, B - A with bootstrap intervals",
                ["train", "ferplus", "model", "draws", "precision"]),
    "closeups": (bench_faces.bench_closeups, "faces that fill the picture: the share found", ["train", "faces"]),
    "jitter": (bench_faces.bench_jitter, "steady clips: top-class changes a second, lag",
               ["train", "onnx", "faces", "frames", "detect-every"]),
    # The page in a browser, as a user sees it.
    "page": (bench_page.bench_page, "the page in Chromium, both modes: start-up, frames/s",
             ["photo", "seconds", "serve-model"]),
}


def build_parser():
    """bench.py MODE [flags]: each mode with its own flags and --help."""
    p = cli.parser(__doc__)
    modes = p.add_subparsers(dest="what", required=True, metavar="MODE")
    for mode, (_, what, flags) in MODES.items():
        sub = modes.add_parser(mode, help=what, description=what, formatter_class=cli.HelpFormatter)
        for flag in flags:
            sub.add_argument(f"--{flag}", **FLAGS[flag])
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    # What the benchmark functions read, whichever flags the mode has.
    args.models = getattr(args, "model", None) or [cli.RELEASED_MODEL]
    args.model = args.models[0]
    if getattr(args, "onnx", "") is None:
        args.onnx = cli.released_model(prefer_onnx=True)
    MODES[args.what][0](args)


if __name__ == "__main__":
    cli.run(main)
