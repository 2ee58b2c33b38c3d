"""Read the emotions of the faces in your own photos, folders and videos:
the repository's face of `ferkit emotions` (ferkit/programs/emotions_cli.py).

    python emotions.py photo.jpg                              # a table on stdout
    python emotions.py photos/ --csv emotions.csv --out-dir annotated/
    python emotions.py clip.mp4 --every 5 --json clip.json --out-dir annotated/
"""
from ferkit.programs import cli
from ferkit.programs.emotions_cli import main, parse_args  # noqa: F401  (tests and users call them from here)

if __name__ == "__main__":
    cli.run(main)
