"""The `ferkit` command, installed with the package:

    ferkit emotions photo.jpg clip.mp4 --json faces.json   # as emotions.py
    ferkit serve --port 8080                                # as serve.py (needs ferkit[serve])
    ferkit info models/ferplus_cnn.onnx                     # how a model file was made (its card)
    ferkit --version

Each subcommand but info takes the same flags as the repository's script of
that name (`ferkit emotions --help`)."""
import sys

from ferkit import __version__
from ferkit.programs import cli

# subcommand -> (module holding its main, what it does, packages it needs beyond ferkit's own)
SUBCOMMANDS = {
    "emotions": ("ferkit.programs.emotions_cli", "read the emotions of the faces in photos, folders and videos", ()),
    "serve": ("ferkit.programs.serve_cli", "a local web page: live webcam emotions and photo drop",
              ("fastapi", "uvicorn", "multipart")),
    "info": ("ferkit.programs.info_cli", "say how a model file was made: its classes, data, recipe, commit and scores", ()),
}

USAGE = "usage: ferkit {" + ",".join(SUBCOMMANDS) + "} [flags]  (ferkit SUBCOMMAND --help for its flags)\n\n" + \
    "\n".join(f"  {name:<9} {what}" for name, (_, what, _) in SUBCOMMANDS.items())


def main(argv=None):
    import importlib
    import importlib.util

    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        sys.exit(0 if argv else 2)
    if argv[0] == "--version":
        print(f"ferkit {__version__}")
        return
    if argv[0] not in SUBCOMMANDS:
        print(f"error: ferkit has no subcommand {argv[0]!r}\n{USAGE}", file=sys.stderr)
        sys.exit(2)
    module_name, _, needs = SUBCOMMANDS[argv[0]]
    missing = [name for name in needs if importlib.util.find_spec(name) is None]
    if missing:  # serve without FastAPI: say what to install.
        print(f"error: ferkit {argv[0]} needs {', '.join(missing)}: pip install 'ferkit[{argv[0]}]'", file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(module_name)
    sys.argv[0] = f"ferkit {argv[0]}"  # What argparse names in usage lines and errors.
    cli.run(module.main, argv[1:])


if __name__ == "__main__":
    main()
