"""Run a processing script as if ``/opt/ml`` were the container's: ``python -m
labkit.local._processing_paths SCRIPT ARGS...``.

Processing scripts name their paths literally (``/opt/ml/processing/input/...``), unlike training
scripts that read ``SM_*`` variables. The engine lays the container's tree out under a scratch
root (``LABKIT_OPT_ML`` = that root's ``opt/ml``); this bootstrap rewrites every path that starts
with ``/opt/ml`` at the file-system calls Python code goes through (``open``, ``os``, ``pathlib``,
``glob``, ``shutil``, pandas' CSV / JSON readers and writers, joblib) and then runs the script as
``__main__``. Native code that opens files itself (pyarrow's Parquet reader) does not see the map.
"""

from __future__ import annotations

import builtins
import io
import os
import runpy
import sys

PREFIX = "/opt/ml"


def _mapper(root: str):
    def remap(path):
        if isinstance(path, int):
            return path
        try:
            text = os.fspath(path)
        except TypeError:
            return path
        if isinstance(text, bytes):
            if text == PREFIX.encode() or text.startswith(PREFIX.encode() + b"/"):
                return root.encode() + text[len(PREFIX):]
            return path
        if text == PREFIX or text.startswith(PREFIX + "/"):
            return root + text[len(PREFIX):]
        return path

    return remap


def map_paths(root: str) -> None:
    remap = _mapper(root)

    def wrap_first(fn):
        def wrapped(path, *args, **kwargs):
            return fn(remap(path), *args, **kwargs)

        wrapped.__wrapped__ = fn
        return wrapped

    def wrap_two(fn):
        def wrapped(src, dst, *args, **kwargs):
            return fn(remap(src), remap(dst), *args, **kwargs)

        wrapped.__wrapped__ = fn
        return wrapped

    builtins.open = io.open = wrap_first(io.open)
    for name in ("open", "stat", "lstat", "listdir", "scandir", "mkdir", "remove", "unlink",
                 "rmdir", "chdir", "access", "utime", "chmod", "truncate"):
        if hasattr(os, name):
            setattr(os, name, wrap_first(getattr(os, name)))
    for name in ("rename", "replace", "symlink", "link"):
        setattr(os, name, wrap_two(getattr(os, name)))


def main(argv: list[str]) -> None:
    root = os.environ["LABKIT_OPT_ML"]
    map_paths(root)
    script = argv[0]
    sys.argv = list(argv)
    real = _mapper(root)(script)
    sys.path.insert(0, os.path.dirname(os.fspath(real)))
    runpy.run_path(os.fspath(real), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
