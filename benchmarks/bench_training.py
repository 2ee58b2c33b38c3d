"""Training benchmarks: CSV parsing, training throughput against a bare
fit, seconds per epoch, float32 against bfloat16, where an epoch goes, and
peak memory. Each prints figures; `bench.py` is the command line."""
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from ferkit.data import fer2013

# The repository root, where the scripts a benchmark runs are.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def synthetic_faces(n):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, 48, 48, 1), dtype=np.uint8), rng.integers(0, 7, size=n).astype(np.int8)


def matmul_peak(dtype="float32"):
    import tensorflow as tf

    a = tf.cast(tf.random.normal((2048, 2048)), dtype)
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

    from ferkit.nets import precision
    from ferkit.train import training
    from ferkit.train.callbacks import make_callbacks
    from ferkit.train.optim import compile_model
    from ferkit.train.pipeline import make_dataset
    from ferkit.train.recipes import PRESETS
    from ferkit.nets.models import flops_per_image, stock_layers

    images, labels = synthetic_faces(args.images)
    data = fer2013.Dataset(images, labels, np.arange(len(labels)), None)
    recipe = PRESETS[args.preset]
    compute = precision.resolve(args.precision)
    compiled = lambda **kw: compile_model(args.model_arch, recipe, len(images) // args.batch_size, **kw)

    # Bare: stock Keras layers in float32, in-memory float32 arrays, no augmentation, no callbacks of ours.
    x, y = images.astype("float32"), keras.utils.to_categorical(labels, 7)
    bare, timer = compiled(fused=False), EpochTimer()
    bare.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, callbacks=[timer.callback], verbose=0)
    bare_rate = len(images) / min(timer.seconds[1:])
    # The project's loop: fused BatchNorm in --precision, uint8 tf.data pipeline, augmentation,
    # resume, log and checkpoint callbacks.
    with tempfile.TemporaryDirectory() as folder:
        model, timer = compiled(fused=True, compute=compute), EpochTimer()
        inference = stock_layers(model)
        callbacks = make_callbacks(model, inference, os.path.join(folder, "m.keras"),
                                            os.path.join(folder, "log.csv"), os.path.join(folder, "resume"))
        ds = make_dataset(data, args.batch_size, shuffle=True, augment=recipe["augment"])
        training.fit(model, ds, epochs=args.epochs, callbacks=[timer.callback, *callbacks], verbose=0)
        ours_rate = len(images) / min(timer.seconds[1:])
    flops = flops_per_image(model) * 3  # Forward, and backward at about twice that.
    peak = matmul_peak(compute)
    print(f"throughput: {args.model_arch}, batch {args.batch_size}, {len(images)} images, best epoch after the first")
    print(f"  bare model.fit, float32 arrays     {bare_rate:7.1f} images/s")
    print(f"  project loop, {compute:<8}, augmented {ours_rate:7.1f} images/s")
    print(f"  ratio project / bare               {ours_rate / bare_rate:7.3f}  (target >= 0.95)")
    print(f"  training FLOP rate                 {flops * ours_rate / 1e9:7.1f} GFLOP/s "
          f"({flops / 1e9:.2f} GFLOP per image)")
    print(f"  {compute} matmul peak (2048x2048)   {peak / 1e9:7.1f} GFLOP/s  -> {flops * ours_rate / peak:.0%} of peak")


def bench_breakdown(args):
    """Where an epoch of train_cnn.py goes, in --precision, scaled to FER2013's
    25,837 training and 2,872 validation faces: the bare train step (one
    batch, already a tensor, in a loop), the tf.data pipeline with
    augmentation on its own (it overlaps the step, on the same two cores), a
    whole epoch of the project's fit, the validation pass, the best-model save
    and the resume checkpoint."""
    import tensorflow as tf

    from ferkit.nets import precision
    from ferkit.train import training
    from ferkit.train.optim import compile_model
    from ferkit.train.pipeline import make_dataset
    from ferkit.train.recipes import PRESETS
    from ferkit.nets.models import stock_layers

    compute = precision.resolve(args.precision)
    images, labels = synthetic_faces(args.images)
    data = fer2013.Dataset(images, labels, np.arange(len(labels)), None)
    recipe = PRESETS["fast"]
    batch = args.batch_size
    model = compile_model("cnn", recipe, len(images) // batch, fused=True, compute=compute)
    x, y = tf.constant(images[:batch].astype("float32")), tf.one_hot(labels[:batch], 7)
    for _ in range(3):
        model.train_on_batch(x, y)
    start, steps = time.perf_counter(), max(4, args.images // batch)
    for _ in range(steps):
        model.train_on_batch(x, y)
    step = (time.perf_counter() - start) / (steps * batch)
    dataset = make_dataset(data, batch, shuffle=True, augment=recipe["augment"])
    for _ in dataset:
        pass
    start = time.perf_counter()
    for _ in dataset:
        pass
    pipeline = (time.perf_counter() - start) / len(images)
    timer = EpochTimer()
    training.fit(model, dataset, epochs=args.epochs, callbacks=[timer.callback], verbose=0)
    fit = min(timer.seconds[1:]) / len(images)
    val = make_dataset(data, 512)
    model.evaluate(val, verbose=0)
    start = time.perf_counter()
    model.evaluate(val, verbose=0)
    validate = (time.perf_counter() - start) / len(images)
    with tempfile.TemporaryDirectory() as folder:
        inference = stock_layers(model)
        start = time.perf_counter()
        inference.set_weights(model.get_weights())
        inference.save(os.path.join(folder, "m.keras"))
        save = time.perf_counter() - start
        start = time.perf_counter()
        model.save_weights(os.path.join(folder, "resume.weights.h5"))
        backup = time.perf_counter() - start
    n_train, n_val = 25_837, 2_872
    print(f"breakdown: one FER2013 epoch in {compute}, batch {batch} (measured on {len(images)} images)")
    rows = [("train step alone (one batch, in a loop)", step * n_train),
            ("augmentation pipeline alone", pipeline * n_train),
            ("fit: pipeline + step, overlapped", fit * n_train),
            ("validation pass", validate * n_val), ("best-model save (when it improves)", save),
            ("resume checkpoint", backup)]
    for name, seconds in rows:
        print(f"  {name:<42} {seconds:6.1f} s")
    total = (fit * n_train) + validate * n_val + save + backup
    print(f"  {'epoch (fit + validation + saves)':<42} {total:6.1f} s -> {n_train / total:.0f} training images/s; "
          f"the pipeline costs {fit / step - 1:+.0%} over the bare step")


def train_cnn_quietly(*argv):
    """What `train_cnn.py ARGV` does, in this process (TensorFlow is already
    started), its output kept off the bench's; returns the run's log rows."""
    import contextlib
    import io

    import keras

    from ferkit.train import recipes
    from ferkit.programs import train_flags
    from ferkit.train import training
    from ferkit.train.config import TrainConfig

    args = train_flags.build_parser("bench", "cnn", list(recipes.PRESETS), "seed").parse_args(list(argv))
    keras.backend.clear_session()
    with contextlib.redirect_stdout(io.StringIO()):
        return training.train(TrainConfig.from_args(args, arch="cnn"), "CNN")


def bench_epochs(args):
    """Seconds per epoch of the real training command on real-size data: the
    one-command check for a GPU box (3 epochs of FER2013 take a few minutes on
    one GPU, about 7 on 2 CPU cores)."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        rows = train_cnn_quietly("--preset", "fast", "--train", args.train, "--epochs", str(args.epochs),
                                 "--out", os.path.join(folder, "m.keras"), "--curves", "")
        seconds = [float(r["seconds"]) for r in rows]
    devices = ", ".join(d.name for d in tf.config.list_physical_devices("GPU")) or "CPU only"
    print(f"epochs: train_cnn.py --preset fast on {args.train} ({devices})")
    print("  seconds per epoch: " + ", ".join(f"{s:.1f}" for s in seconds) + " (the first includes tracing)")


def bench_precision(args):
    """train_cnn.py --limit 6000 --epochs 3 in float32 then bfloat16, one
    after the other: images/s of the last epoch (the first pays for tracing)."""
    from ferkit.nets.models import build_cnn, flops_per_image

    data = fer2013.load_csv(args.train, limit=args.limit)
    train_faces = len(fer2013.split_indices(data)[0])  # train_cnn.py's split.
    rates = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in ("float32", "bfloat16"):
            rows = train_cnn_quietly("--train", args.train, "--limit", str(args.limit), "--epochs", str(args.epochs),
                                     "--precision", name, "--out", os.path.join(folder, f"{name}.keras"), "--curves", "")
            rates[name] = train_faces / float(rows[-1]["seconds"])
            print(f"precision: train_cnn.py --precision {name}: epoch {rows[-1]['epoch']} {float(rows[-1]['seconds']):.1f} s, "
                  f"{rates[name]:.0f} images/s (training, validation and checkpoint included)")
    flops = flops_per_image(build_cnn()) * 3  # Forward, and backward at about twice that.
    peak = matmul_peak("bfloat16")
    print(f"  ratio bfloat16 / float32           {rates['bfloat16'] / rates['float32']:7.2f}")
    print(f"  bfloat16 training FLOP rate        {flops * rates['bfloat16'] / 1e9:7.1f} GFLOP/s, "
          f"{flops * rates['bfloat16'] / peak:.0%} of the bfloat16 matmul peak ({peak / 1e9:.0f} GFLOP/s)")


def peak_rss_of(command):
    """Peak resident memory (MiB) of a command, measured by a fresh parent."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "sys.stderr.write(r.stderr[-2000:]); "
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True)
    code, kib = out.stdout.split()
    if int(code) != 0:
        # A peak of a run that failed measures nothing: say so, and fail.
        from ferkit.errors import UsageError

        said = [line for line in out.stderr.splitlines() if line.startswith("error:")] or out.stderr.splitlines()[-1:]
        raise UsageError(f"{os.path.basename(command[1])} exited {code}, so there is no peak to report"
                         + (f" ({said[-1]})" if said else ""))
    return int(code), int(kib) / 1024, time.perf_counter() - start


def bench_memory(args):
    with tempfile.TemporaryDirectory() as folder:
        model = os.path.join(folder, "m.keras")
        train = [sys.executable, os.path.join(ROOT, "train_cnn.py"), "--train", args.train, "--epochs", "1",
                 "--out", model,
                 "--curves", "", "--preset", "fast"]
        code, mib, seconds = peak_rss_of(train)
        print(f"memory: train_cnn.py, 1 epoch on {args.train}: peak RSS {mib:.0f} MiB (target <= 3072), "
              f"exit {code}, {seconds:.0f} s")
        predict = [sys.executable, os.path.join(ROOT, "predict.py"), "--model", model, "--test", args.test, "--out",
                   os.path.join(folder, "s.csv")]
        code, mib, seconds = peak_rss_of(predict)
        print(f"memory: predict.py on {args.test}: peak RSS {mib:.0f} MiB (target <= 2048), exit {code}, {seconds:.1f} s")
