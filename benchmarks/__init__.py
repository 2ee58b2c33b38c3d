"""What bench.py measures, one module per side: training (bench_training.py)
and inference (bench_inference.py). Beside the scripts, not in the library:
they time whole script runs (python train_cnn.py, emotions.py, ...) from the
repository root."""
