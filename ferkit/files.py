"""Writing files so that a reader never sees half of one. No imports beyond
the standard library, so every module can use it."""
import os
import tempfile


class atomic_output:
    """Context manager yielding a temporary path beside `path`; on success the
    file is renamed over `path`, on any error it is removed. Readers therefore
    see the old file or the complete new one, never a partial write."""

    def __init__(self, path, suffix=None):
        self.path = os.fspath(path)
        self.suffix = suffix if suffix is not None else os.path.splitext(self.path)[1]

    def __enter__(self):
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=".tmp-", suffix=self.suffix, dir=folder)
        os.close(fd)
        # mkstemp makes the file private (0600); give it the mode a plain
        # open() would, so outputs are as readable as any other file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o666 & ~umask)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)
        return False
