"""Numeric precision: which one to run in, and Keras' name for it.

    --precision float32    everything in float32
    --precision bfloat16   Keras' mixed_bfloat16: float32 variables, bfloat16 math
    --precision float16    Keras' mixed_float16 (older GPUs; loss scaling by Keras)
    --precision auto       bfloat16 where the hardware does it natively (a CPU
                           with AVX512-BF16 or AMX-BF16, an NVIDIA GPU of compute
                           capability 8.0 or newer), float32 elsewhere

In every precision the variables, the last layer (Dense 7 with its softmax)
and the loss stay in float32.

What makes bfloat16 fast (a fused BatchNorm) and how a model is switched
between precisions live in models.py. This module imports neither Keras nor
TensorFlow (until `resolve('auto')` asks for the GPUs), so every script can
offer --precision without paying for them at start-up.
"""

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve(name):
    """'auto' -> the precision this machine runs fastest without losing accuracy."""
    if name not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name != "auto":
        return name
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        return "bfloat16" if tuple(capability) >= (8, 0) else "float32"
    return "bfloat16" if cpu_flags() & {"amx_bf16", "avx512_bf16"} else "float32"


def policy(precision):
    return POLICIES[precision]
