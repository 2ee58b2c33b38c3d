"""A local web page: live webcam emotions and photo drop: the repository's
face of `ferkit serve` (ferkit/programs/serve_cli.py).

    python serve.py                                   # http://127.0.0.1:8000
    python serve.py --model models/fer2013_cnn.onnx --port 8080
"""
from ferkit.programs import cli
from ferkit.programs.serve_cli import build, main, parse_args  # noqa: F401  (tests and users call them from here)

if __name__ == "__main__":
    cli.run(main)
