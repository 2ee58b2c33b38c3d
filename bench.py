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
from benchmarks import bench_inference
from benchmarks import bench_page
from benchmarks import bench_training
from ferkit import cli

MODES = {
    # Training: what an epoch costs, and what feeds it.
    "csv": bench_training.bench_csv, "throughput": bench_training.bench_throughput,
    "breakdown": bench_training.bench_breakdown, "epochs": bench_training.bench_epochs,
    "precision": bench_training.bench_precision, "memory": bench_training.bench_memory,
    # Inference: scripts, detectors, runtimes, the server.
    "predict": bench_inference.bench_predict, "crop": bench_inference.bench_crop,
    "detectors": bench_inference.bench_detectors, "emotions": bench_inference.bench_emotions,
    "runtimes": bench_inference.bench_runtimes, "parity": bench_inference.bench_parity,
    "serve": bench_inference.bench_serve, "rotation": bench_inference.bench_rotation,
    "shifts": bench_inference.bench_shifts, "compare": bench_inference.bench_compare, "closeups": bench_inference.bench_closeups,
    "jitter": bench_inference.bench_jitter,
    # The page in a browser, as a user sees it.
    "page": bench_page.bench_page,
}


def main(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("what", choices=list(MODES))
    p.add_argument("--train", default="data/train.csv", help="training CSV")
    p.add_argument("--test", default="data/test.csv", help="test CSV")
    p.add_argument("--model", action="append", default=None,
                   help="Keras model for the predict, detectors, emotions and runtimes benchmarks; shifts and compare: a "
                        "model (.keras or .onnx) to score, repeated for several (default: models/fer2013_cnn.keras)")
    p.add_argument("--ferplus", default=None,
                   help="shifts and compare: FER+'s fer2013new.csv, joined to --train (fer2013.csv)")
    p.add_argument("--draws", type=int, default=2000, help="compare: bootstrap draws")
    p.add_argument("--onnx", default=cli.released_model(prefer_onnx=True),
                   help="ONNX model for the emotions and runtimes benchmarks")
    p.add_argument("--repeat", type=int, default=3, help="csv: timings per parser")
    p.add_argument("--images", type=int, default=3072, help="throughput: images per epoch")
    p.add_argument("--epochs", type=int, default=3, help="throughput, epochs and precision: epochs (the first is not timed)")
    p.add_argument("--batch-size", type=int, default=128, help="throughput: batch size")
    p.add_argument("--preset", default="fast", help="throughput: recipe (optimizer, augmentation)")
    p.add_argument("--arch", dest="model_arch", default="cnn", choices=["cnn", "dnn"], help="throughput: architecture")
    p.add_argument("--limit", type=int, default=6000, help="precision: training rows")
    p.add_argument("--precision", default="float32", help="throughput and breakdown: precision of the project loop")
    p.add_argument("--detector", default="haar", help="crop: detector")
    p.add_argument("--detector-list", default="blazeface,haar,mtcnn", help="detectors: detectors to compare")
    p.add_argument("--faces", type=int, default=600, help="crop, detectors, rotation, closeups and jitter: faces")
    p.add_argument("--pad", type=int, default=0, help="detectors: edge pixels around each pasted 48x48 face")
    p.add_argument("--angles", default="0,15,-15,30,-30", help="rotation: angles in degrees")
    p.add_argument("--photos", type=int, default=31, help="emotions: photos")
    p.add_argument("--frames", type=int, default=150, help="emotions and jitter: video frames (jitter: of each clip)")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="serve: a running serve.py")
    p.add_argument("--clients", type=int, default=4, help="serve: concurrent clients")
    p.add_argument("--seconds", type=float, default=20,
                   help="serve: how long to send frames; page: seconds of rate lines a mode")
    p.add_argument("--photo", help="page: what the fake camera shows (default: matplotlib's Grace Hopper photo)")
    p.add_argument("--serve-model", default=None, help="page: the .onnx model serve.py runs (default: its own)")
    args = p.parse_args(argv)
    args.models = args.model or [cli.RELEASED_MODEL]
    args.model = args.models[0]
    MODES[args.what](args)


if __name__ == "__main__":
    cli.run(main)
