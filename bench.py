"""Benchmarks that print figures: CSV parsing, training throughput, memory.

    python bench.py csv --train data/train.csv      # load_csv vs pandas' C parser
    python bench.py throughput                      # project loop vs bare model.fit, FLOP rate
    python bench.py memory --train data/train.csv --test data/test.csv
    python bench.py predict --test data/test.csv --model models/cnn.keras
    python bench.py epochs --train data/train.csv --epochs 3   # seconds per epoch (e.g. on a GPU box)

Timings on shared machines are noisy: compare the ratios printed by one run.
"""
import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import cli
import fer2013


def plain_copy(path, folder):
    """The CSV uncompressed, so both parsers read the same bytes from disk."""
    if not path.endswith(".gz"):
        return path
    target = os.path.join(folder, os.path.basename(path)[:-3])
    with gzip.open(path, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 24)
    return target


def bench_csv(args):
    import pandas as pd

    with tempfile.TemporaryDirectory() as folder:
        path = plain_copy(args.train, folder)
        # pandas reads the same values as 2,305 uint8 columns: the same file
        # with its one comma turned into a space (same size, same digits).
        spaced = os.path.join(folder, "spaced.csv")
        with open(path, "rb") as src, open(spaced, "wb") as dst:
            dst.write(src.read().replace(b",", b" "))
        timings = {"load_csv": [], "pandas": []}
        for _ in range(args.repeat):
            start = time.perf_counter()
            data = fer2013.load_csv(path, cache=False)
            timings["load_csv"].append(time.perf_counter() - start)
            start = time.perf_counter()
            frame = pd.read_csv(spaced, sep=" ", header=None, skiprows=1, dtype=np.uint8, engine="c")
            timings["pandas"].append(time.perf_counter() - start)
        assert np.array_equal(frame.to_numpy()[:, 1:].reshape(data.images.shape), data.images)
        fer2013.load_csv(path)  # Fill the cache, then time a cached load.
        start = time.perf_counter()
        fer2013.load_csv(path)
        cached = time.perf_counter() - start
        size = os.path.getsize(path) / 2**20
    ours, theirs = min(timings["load_csv"]), min(timings["pandas"])
    print(f"csv: {len(data)} rows, {size:.0f} MB, best of {args.repeat}")
    print(f"  load_csv (cache=False)        {ours:6.2f} s")
    print(f"  pandas C parser, 2305 uint8   {theirs:6.2f} s")
    print(f"  ratio load_csv / pandas       {ours / theirs:6.2f}  (target <= 1.0)")
    print(f"  load_csv, cached              {cached:6.3f} s")


def model_flops_per_image(model):
    """Forward multiply-adds x 2 for convolutions and dense layers."""
    import keras

    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            h, w, c_out = layer.output.shape[1:]
            k = np.prod(layer.kernel_size) * layer.input.shape[-1]
            flops += 2 * h * w * c_out * k
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.input.shape[-1] * layer.units
    return flops


def matmul_peak():
    import tensorflow as tf

    a = tf.random.normal((2048, 2048))
    step = tf.function(lambda a: tf.matmul(a, a))
    step(a).numpy()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < 3:
        step(a).numpy()
        n += 1
    return 2 * 2048**3 * n / (time.perf_counter() - start)


class EpochTimer:
    def __init__(self):
        import keras

        timer = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                timer.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                timer.seconds.append(time.perf_counter() - timer.start)

        self.seconds = []
        self.callback = Callback()


def bench_throughput(args):
    import keras

    import training
    from models import ARCHITECTURES

    images, labels = synthetic_faces(args.images)
    data = fer2013.Dataset(images, labels, np.arange(len(labels)), None)
    recipe = training.PRESETS[args.preset]

    def compiled():
        keras.utils.set_random_seed(0)
        model = ARCHITECTURES[args.model_arch]()
        model.compile(optimizer=training.make_optimizer(recipe, len(images) // args.batch_size),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"])
        return model

    # Bare: in-memory float32 arrays, no augmentation, no callbacks of ours.
    x, y = images.astype("float32"), keras.utils.to_categorical(labels, 7)
    bare, timer = compiled(), EpochTimer()
    bare.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, callbacks=[timer.callback], verbose=0)
    bare_rate = len(images) / min(timer.seconds[1:])
    # The project's loop: uint8 tf.data pipeline, augmentation, resume, log and checkpoint callbacks.
    with tempfile.TemporaryDirectory() as folder:
        model, timer = compiled(), EpochTimer()
        inference = keras.models.clone_model(model)
        callbacks = training.make_callbacks(model, inference, os.path.join(folder, "m.keras"),
                                            os.path.join(folder, "log.csv"), os.path.join(folder, "resume"))
        ds = training.make_dataset(data, args.batch_size, shuffle=True, augment=recipe["augment"])
        model.fit(ds, epochs=args.epochs, callbacks=[timer.callback, *callbacks], verbose=0)
        ours_rate = len(images) / min(timer.seconds[1:])
    flops = model_flops_per_image(model) * 3  # Forward, and backward at about twice that.
    peak = matmul_peak()
    print(f"throughput: {args.model_arch}, batch {args.batch_size}, {len(images)} images, best epoch after the first")
    print(f"  bare model.fit, float32 arrays     {bare_rate:7.1f} images/s")
    print(f"  project loop, augmentation on      {ours_rate:7.1f} images/s")
    print(f"  ratio project / bare               {ours_rate / bare_rate:7.3f}  (target >= 0.95)")
    print(f"  training FLOP rate                 {flops * ours_rate / 1e9:7.1f} GFLOP/s "
          f"({flops / 1e9:.2f} GFLOP per image)")
    print(f"  fp32 matmul peak (2048x2048)       {peak / 1e9:7.1f} GFLOP/s  -> {flops * ours_rate / peak:.0%} of peak")


def synthetic_faces(n):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, 48, 48, 1), dtype=np.uint8), rng.integers(0, 7, size=n).astype(np.int8)


def peak_rss_of(command):
    """Peak resident memory (MiB) of a command, measured by a fresh parent."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True); "
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True)
    code, kib = out.stdout.split()
    return int(code), int(kib) / 1024, time.perf_counter() - start


def bench_memory(args):
    with tempfile.TemporaryDirectory() as folder:
        model = os.path.join(folder, "m.keras")
        train = [sys.executable, "train_cnn.py", "--train", args.train, "--epochs", "1", "--out", model,
                 "--curves", "", "--preset", "fast"]
        code, mib, seconds = peak_rss_of(train)
        print(f"memory: train_cnn.py, 1 epoch on {args.train}: peak RSS {mib:.0f} MiB (target <= 3072), "
              f"exit {code}, {seconds:.0f} s")
        predict = [sys.executable, "predict.py", "--model", model, "--test", args.test, "--out",
                   os.path.join(folder, "s.csv")]
        code, mib, seconds = peak_rss_of(predict)
        print(f"memory: predict.py on {args.test}: peak RSS {mib:.0f} MiB (target <= 2048), exit {code}, {seconds:.1f} s")


def bench_predict(args):
    with tempfile.TemporaryDirectory() as folder:
        for extra in ([], ["--tta"], ["--model", args.model, "--tta"]):
            command = [sys.executable, "predict.py", "--model", args.model, *extra, "--test", args.test,
                       "--out", os.path.join(folder, "s.csv")]
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            print(f"predict.py {' '.join(extra) or '(one model)'}: {time.perf_counter() - start:.1f} s end to end")


def bench_epochs(args):
    """Seconds per epoch of the real training command on real-size data: the
    one-command check for a GPU box (3 epochs of FER2013 take a few minutes on
    one GPU, about 7 on 2 CPU cores)."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        out, log = os.path.join(folder, "m.keras"), os.path.join(folder, "log.csv")
        command = [sys.executable, "train_cnn.py", "--preset", "fast", "--train", args.train, "--epochs", str(args.epochs),
                   "--out", out, "--log", log, "--curves", ""]
        subprocess.run(command, check=True, capture_output=True)
        import training

        seconds = [float(r["seconds"]) for r in training.read_log(log)]
    devices = ", ".join(d.name for d in tf.config.list_physical_devices("GPU")) or "CPU only"
    print(f"epochs: train_cnn.py --preset fast on {args.train} ({devices})")
    print("  seconds per epoch: " + ", ".join(f"{s:.1f}" for s in seconds) + " (the first includes tracing)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("what", choices=["csv", "throughput", "memory", "predict", "epochs"])
    p.add_argument("--train", default="data/train.csv", help="training CSV")
    p.add_argument("--test", default="data/test.csv", help="test CSV")
    p.add_argument("--model", default="models/cnn.keras", help="model for the predict benchmark")
    p.add_argument("--repeat", type=int, default=3, help="csv: timings per parser")
    p.add_argument("--images", type=int, default=3072, help="throughput: images per epoch")
    p.add_argument("--epochs", type=int, default=3, help="throughput and epochs: epochs (the first is not timed)")
    p.add_argument("--batch-size", type=int, default=128, help="throughput: batch size")
    p.add_argument("--preset", default="fast", help="throughput: recipe (optimizer, augmentation)")
    p.add_argument("--arch", dest="model_arch", default="cnn", choices=["cnn", "dnn"], help="throughput: architecture")
    args = p.parse_args(argv)
    {"csv": bench_csv, "throughput": bench_throughput, "memory": bench_memory, "predict": bench_predict,
     "epochs": bench_epochs}[args.what](args)


if __name__ == "__main__":
    cli.run(main)
