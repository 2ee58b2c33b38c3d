"""The errors a user's mistake raises. cli.run turns each into one line on
stderr and exit status 2, with no traceback; anything else is a bug and keeps
its traceback. No imports, so every module can raise them."""


class DataError(ValueError):
    """A problem with an input file; str() is one line naming file and line."""

    def __init__(self, path, problem, line=None):
        where = f"{path}" if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {problem}")


class UsageError(ValueError):
    """A flag value that cannot work, such as a layer name the model lacks."""


class ModelFileError(ValueError):
    """A model file that is missing or cannot be read."""


class TrainingStopped(RuntimeError):
    """Training could not go on (its loss stopped being finite); cli.run
    prints it as one line and exits 3, the last good model kept."""
