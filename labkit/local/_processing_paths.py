"""Run a processing script as if ``/opt/ml`` were the container's: ``python -m
labkit.local._processing_paths SCRIPT ARGS...``.

Processing scripts name their paths literally (``/opt/ml/processing/input/...``), unlike training
scripts that read ``SM_*`` variables. The engine lays the container's tree out under a scratch
root (``LABKIT_OPT_ML`` = that root's ``opt/ml``); this bootstrap rewrites every path that starts
with ``/opt/ml`` at the file-system calls Python code goes through (``open``, ``os``, ``pathlib``,
``glob``, ``shutil``, pandas' CSV / JSON readers and writers, joblib) and then runs the script as
``__main__``. Native code opens files itself, so pyarrow's Parquet functions (which pandas'
``read_parquet`` / ``to_parquet`` call) are wrapped too, once the script imports them. Other native
readers do not see the map.
"""

from __future__ import annotations

import builtins
import importlib.abc
import importlib.util
import io
import linecache
import os
import sys
import traceback

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


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``hook(module)`` once ``name`` is imported: pyarrow is costly, and most scripts never
    import it, so it is patched on its first import instead of imported here."""

    def __init__(self, name: str, hook):
        self.name, self.hook = name, hook

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            self.hook(module)

        spec.loader.exec_module = exec_module
        return spec


def map_parquet(root: str, parquet) -> None:
    """pyarrow.parquet's path-taking functions, with ``/opt/ml`` paths mapped like ``open``'s."""
    remap = _mapper(root)

    def first(fn):
        def wrapped(source, *args, **kwargs):
            return fn(remap(source), *args, **kwargs)
        return wrapped

    def second(fn):
        def wrapped(table, where, *args, **kwargs):
            return fn(table, remap(where), *args, **kwargs)
        return wrapped

    for name in ("read_table", "read_metadata", "read_schema", "read_pandas"):
        if hasattr(parquet, name):
            setattr(parquet, name, first(getattr(parquet, name)))
    for name in ("write_table", "write_to_dataset"):
        if hasattr(parquet, name):
            setattr(parquet, name, second(getattr(parquet, name)))

    class ParquetFile(parquet.ParquetFile):
        def __init__(self, source, *args, **kwargs):
            super().__init__(remap(source), *args, **kwargs)

    class ParquetWriter(parquet.ParquetWriter):
        def __init__(self, where, *args, **kwargs):
            super().__init__(remap(where), *args, **kwargs)

    parquet.ParquetFile, parquet.ParquetWriter = ParquetFile, ParquetWriter


def map_arrow_files(root: str, arrow) -> None:
    """pyarrow's own file openers (pandas opens a Parquet file with ``pyarrow.OSFile``)."""
    remap = _mapper(root)
    native = arrow.OSFile

    class OSFile(native):
        def __new__(cls, path, *args, **kwargs):
            return native.__new__(cls, remap(path), *args, **kwargs)

    arrow.OSFile = OSFile
    for name in ("memory_map", "create_memory_map", "input_stream", "output_stream"):
        if hasattr(arrow, name):
            fn = getattr(arrow, name)
            setattr(arrow, name, (lambda fn: lambda source, *a, **k: fn(remap(source), *a, **k))(fn))


def main(argv: list[str]) -> None:
    """Run the script as ``__main__`` under its container path (``__file__``, tracebacks)."""
    root = os.environ["LABKIT_OPT_ML"]
    map_paths(root)
    sys.meta_path[:0] = [_AfterImport("pyarrow", lambda module: map_arrow_files(root, module)),
                         _AfterImport("pyarrow.parquet", lambda module: map_parquet(root, module))]
    script = argv[0]
    sys.argv = list(argv)
    with open(script, "rb") as source:  # mapped
        text = source.read()
    code = compile(text, script, "exec")
    lines = text.decode("utf-8", "replace").splitlines(keepends=True)
    linecache.cache[script] = (len(text), None, lines, script)  # tracebacks show the source lines
    real = _mapper(os.environ["LABKIT_OPT_ML"])(script)
    sys.path.insert(0, os.path.dirname(os.fspath(real)))
    namespace = {"__name__": "__main__", "__file__": script, "__builtins__": builtins}
    try:
        exec(code, namespace)
    except SystemExit:
        raise
    except BaseException as exc:  # the traceback a container shows: the script's frames only
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
