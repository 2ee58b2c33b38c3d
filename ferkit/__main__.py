"""python -m ferkit: the ferkit command (command.py)."""
from ferkit.command import main

main()
