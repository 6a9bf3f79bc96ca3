"""Hidden checks run in the grader's own process, outside the learner's kernel.

A graded test cell holds visible self-check lines and a hidden block (``### BEGIN HIDDEN TESTS``).
The grader runs the hidden block here, with ``aws`` bound to its own handle on the submission's
local AWS; every other name the block uses (``rejected_code``, ``flights``...) is fetched from the
kernel as plain data — JSON values, or DataFrames rebuilt from Parquet — and is only a claim the
check verifies against AWS state. No object, function or module crosses from the kernel, so
nothing the learner's code did to its own interpreter can change what a check does.
"""

from __future__ import annotations

import builtins
import json
import re
import secrets
from pathlib import Path

import boto3

from labkit.backend import LOCAL_ACCOUNT_ID, LOCAL_REGION, Handle, course_bucket

HIDDEN_BLOCK = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n(.*?)^[ \t]*### END HIDDEN TESTS[^\n]*(\n|$)",
                          re.S | re.M)
MAX_EXPORT_BYTES = 256 * 1024 * 1024


def split_hidden(source: str) -> tuple[str, str]:
    """(visible source, hidden source) of a test cell; hidden is '' when there is none."""
    hidden = "".join(m.group(1) for m in HIDDEN_BLOCK.finditer(source))
    return HIDDEN_BLOCK.sub("", source), hidden


class _EndpointSession(boto3.Session):
    """A boto3 session whose clients all go to one endpoint (the grader's own environment has no
    ``AWS_ENDPOINT_URL``, so nothing else in the grader process can reach the submission's AWS)."""

    def __init__(self, endpoint: str):
        super().__init__(aws_access_key_id="testing", aws_secret_access_key="testing",
                         region_name=LOCAL_REGION)
        self._endpoint = endpoint

    def client(self, *args, **kwargs):
        kwargs.setdefault("endpoint_url", self._endpoint)
        return super().client(*args, **kwargs)

    def resource(self, *args, **kwargs):
        kwargs.setdefault("endpoint_url", self._endpoint)
        return super().resource(*args, **kwargs)


def grader_handle(endpoint: str) -> Handle:
    """The grader's trusted ``aws`` for one submission's local AWS."""
    return Handle("local", _EndpointSession(endpoint), LOCAL_REGION, LOCAL_ACCOUNT_ID,
                  course_bucket(LOCAL_ACCOUNT_ID, LOCAL_REGION), endpoint)


# Runs in the learner's kernel: writes the named variables as plain data into the exchange folder.
# Whatever it writes is a claim; the grader only parses JSON and Parquet from it.
EXPORT_SOURCE = r'''
def _export(names, folder, nonce, user):
    import datetime, json, math, os, sys
    pd = sys.modules.get("pandas")
    np = sys.modules.get("numpy")
    def plain(value):
        if np is not None:
            if isinstance(value, np.ndarray):
                return plain(value.tolist())
            if isinstance(value, np.generic):
                return plain(value.item())
        if pd is not None and isinstance(value, pd.Timestamp):
            return value.isoformat()
        if isinstance(value, float) and not math.isfinite(value):
            return None if math.isnan(value) else str(value)
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        if isinstance(value, (datetime.datetime, datetime.date)):
            return value.isoformat()
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, (set, frozenset)):
            return sorted((plain(v) for v in value), key=repr)
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        raise TypeError(type(value).__name__)
    answer = {}
    for i, name in enumerate(names):
        if name not in user:
            answer[name] = {"kind": "missing"}
            continue
        value = user[name]
        try:
            if pd is not None and isinstance(value, (pd.DataFrame, pd.Series)):
                series = isinstance(value, pd.Series)
                frame = value.to_frame(name=str(value.name) if value.name is not None else "value") \
                    if series else value.copy()
                frame.columns = [str(c) for c in frame.columns]
                path = os.path.join(folder, f"{nonce}-{i}.parquet")
                frame.to_parquet(path)
                answer[name] = {"kind": "frame", "file": os.path.basename(path), "series": series}
            else:
                answer[name] = {"kind": "json", "value": plain(value)}
        except Exception as error:
            answer[name] = {"kind": "unsupported", "type": type(value).__name__, "error": str(error)[:200]}
    with open(os.path.join(folder, f"{nonce}.json"), "w") as out:
        json.dump(answer, out)
'''


def export_code(names: list[str], folder: str, nonce: str) -> str:
    """Code sent to the kernel to export ``names`` (kept out of the learner's namespace)."""
    source = EXPORT_SOURCE + f"\n_export({names!r}, {folder!r}, {nonce!r}, _u)\n"
    return f"exec(compile({source!r}, '<grader export>', 'exec'), {{'_u': globals()}})"


def read_export(folder: str, nonce: str) -> dict:
    """The values the kernel exported, rebuilt from plain data only (JSON, Parquet)."""
    import pandas as pd

    base = Path(folder)
    index = base / f"{nonce}.json"
    values: dict = {}
    if not index.is_file() or index.stat().st_size > MAX_EXPORT_BYTES:
        return values
    answer = json.loads(index.read_text())
    for name, item in answer.items() if isinstance(answer, dict) else ():
        kind = item.get("kind") if isinstance(item, dict) else None
        if kind == "json":
            values[name] = item.get("value")
        elif kind == "frame":
            path = base / Path(str(item.get("file", ""))).name
            if path.is_file() and path.stat().st_size <= MAX_EXPORT_BYTES:
                frame = pd.read_parquet(path)
                values[name] = frame.iloc[:, 0] if item.get("series") and frame.shape[1] == 1 else frame
            else:
                values[name] = None
        elif kind == "missing":
            values[name] = _MISSING
        else:
            values[name] = None
    for path in base.glob(f"{nonce}*"):
        path.unlink(missing_ok=True)
    return values


_MISSING = object()


class NotInNotebook:
    """Stands for a name the learner's notebook does not define. The check still runs, so its
    checks of the AWS state come first and name the real mistake (a daily schedule, not "the
    schedule's output is missing"); any use of the value itself raises the NameError."""

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)

    def _raise(self, *args, **kwargs):
        raise NameError(f"name '{object.__getattribute__(self, '_name')}' is not defined in your notebook "
                        "(the check needs it)")

    def __getattr__(self, attribute):
        self._raise()

    __call__ = __getitem__ = __iter__ = __len__ = __bool__ = __contains__ = _raise
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _raise
    __float__ = __int__ = __index__ = __str__ = __repr__ = __format__ = _raise
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _raise
    __setattr__ = __setitem__ = __neg__ = __abs__ = __round__ = _raise


class LearnerNamespace(dict):
    """The hidden block's local namespace: its own imports and ``aws`` live here; a name it does not
    define is fetched from the kernel (once per cell) through ``fetch(names) -> {name: value}``."""

    def __init__(self, aws: Handle, fetch):
        super().__init__(aws=aws)
        self._fetch = fetch

    def __missing__(self, name):
        if hasattr(builtins, name):
            raise KeyError(name)  # let Python fall through to the builtins
        value = self._fetch([name]).get(name, _MISSING)
        if value is _MISSING:
            value = NotInNotebook(name)
        self[name] = value
        return value


def run_hidden(source: str, aws: Handle, fetch) -> BaseException | None:
    """Run one hidden block in this process; the exception it raised, or None."""
    namespace = LearnerNamespace(aws, fetch)
    try:
        exec(compile(source, "<hidden tests>", "exec"), {"__builtins__": builtins, "__name__": "hidden"},
             namespace)
    except Exception as exc:  # noqa: BLE001 - every failure is the cell's lost points
        return exc
    return None


def new_nonce() -> str:
    return "x" + secrets.token_hex(8)


__all__ = ["split_hidden", "grader_handle", "export_code", "read_export", "run_hidden", "new_nonce",
           "LearnerNamespace"]
