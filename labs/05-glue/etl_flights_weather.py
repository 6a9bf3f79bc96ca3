"""AWS Glue Python shell job: raw flights + weather CSV -> curated Parquet.

Run by Glue (not by you): ``python etl_flights_weather.py --bucket B --raw_prefix raw/
--curated_prefix curated/`` plus Glue's own ``--JOB_NAME`` / ``--JOB_RUN_ID`` arguments. It needs
pandas and pyarrow: on AWS set the job argument ``library-set`` to ``analytics`` (Python 3.9).

What it does, and why:
1. reads every daily flights CSV under ``<raw_prefix>flights/year=YYYY/month=MM/`` (the partition
   values live in the path, so they are added back as columns) and the weather CSV;
2. repairs the weather table: a wind speed above 100 mph at these airports is a sensor error (the
   data set has one reading of 1,048 mph); it becomes missing, not a fake value;
3. drops cancelled flights (no ``dep_time``): they never departed, so they have no delay to learn;
4. joins each flight with the weather at its origin airport in its scheduled hour (``time_hour``,
   UTC) — a left join, because 1,573 flights have no weather row and must not vanish;
5. writes Parquet (columnar, compressed, typed): the joined table partitioned by ``month=MM/``
   (queries that filter on month read only those folders) and the cleaned weather table.
Existing output under the curated prefix is replaced, so a re-run gives the same result.
"""

import io
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
import pandas as pd
from awsglue.utils import getResolvedOptions

MAX_WIND_MPH = 100

args = getResolvedOptions(sys.argv, ["JOB_NAME", "bucket", "raw_prefix", "curated_prefix"])
bucket, raw, curated = args["bucket"], args["raw_prefix"], args["curated_prefix"]
s3 = boto3.client("s3")


def keys(prefix):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def read_csv(key):
    return pd.read_csv(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))


def put_parquet(frame, key):
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


def read_daily_file(key):
    frame = read_csv(key)
    for folder in key.split("/"):
        if "=" in folder:  # year=2013/month=01 -> columns year, month
            name, value = folder.split("=", 1)
            frame[name] = int(value)
    return frame


with ThreadPoolExecutor(8) as pool:  # 365 small files: read them in parallel
    parts = list(pool.map(read_daily_file, [k for k in keys(f"{raw}flights/") if k.endswith(".csv")]))
flights = pd.concat(parts, ignore_index=True)
weather = read_csv(f"{raw}weather/weather.csv")
print(f"read {len(flights)} flights from {len(parts)} files and {len(weather)} weather rows")

flights["time_hour"] = pd.to_datetime(flights["time_hour"], utc=True)
weather["time_hour"] = pd.to_datetime(weather["time_hour"], utc=True)

outliers = weather["wind_speed"] > MAX_WIND_MPH
weather.loc[outliers, ["wind_speed", "wind_gust"]] = float("nan")
print(f"set {int(outliers.sum())} impossible wind_speed readings (> {MAX_WIND_MPH} mph) to missing")

cancelled = flights["dep_time"].isna()
flights = flights[~cancelled]
print(f"dropped {int(cancelled.sum())} cancelled flights")

joined = flights.merge(weather.drop(columns=["year", "month", "day", "hour"]),
                       on=["origin", "time_hour"], how="left", validate="many_to_one")

old = [{"Key": k} for k in keys(curated)]
for begin in range(0, len(old), 1000):
    s3.delete_objects(Bucket=bucket, Delete={"Objects": old[begin:begin + 1000]})
for month, part in joined.groupby("month"):
    put_parquet(part.drop(columns=["month"]),
                f"{curated}flights_weather/month={month:02d}/part-00000.parquet")
put_parquet(weather, f"{curated}weather/weather.parquet")
print(f"wrote {len(joined)} rows to s3://{bucket}/{curated}flights_weather/ "
      f"({joined['month'].nunique()} month partitions) and {len(weather)} rows to {curated}weather/")
