"""Say how a model file was made: its classes and its card (card.py).

    ferkit info models/ferplus_cnn.onnx           # or: python -m ferkit info MODEL
    ferkit info runs/x/model.keras --json         # the card itself, as JSON

An .onnx file is read with ONNX Runtime alone, a .keras file as the zip it
is: no TensorFlow either way.
"""
import json

from ferkit.nets import card
from ferkit.programs import cli


def main(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("models", nargs="+", metavar="MODEL", help=".keras or .onnx files")
    p.add_argument("--json", action="store_true", help="print each file's card as JSON instead")
    args = p.parse_args(argv)
    for i, path in enumerate(args.models):
        if args.json:
            print(json.dumps(card.read_card(path), indent=1, sort_keys=True))
            continue
        print(("\n" if i else "") + "\n".join(card.describe(path)))
