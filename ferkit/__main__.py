"""python -m ferkit: the ferkit command (command.py)."""
from ferkit.programs.command import main

main()
