"""Emulation overhead of the local SageMaker training engine: lab 07's train.py as a training job
(create_training_job → channel download from S3 → subprocess under the SM_* contract → log
streaming + metric regexes → model.tar.gz to S3 → Completed, observed by polling
describe_training_job) vs the same train.py run directly on the same files on local disk.
Measured as a ratio in one run (the machine's load moves both sides alike).

    .venv/bin/python benchmarks/bench_training.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
TRAIN_PY = REPO / "solutions/07-training/train.py"


def channels(folder: Path):
    """Lab 07's channels: 20,000 Jan–Jun and 30,000 Jul–Dec flights, label first, with header."""
    from labkit import datasets

    flights = datasets.add_label(datasets.joined())
    carriers = sorted(flights["carrier"].unique())
    flights["carrier_code"] = flights["carrier"].map({c: i for i, c in enumerate(carriers)})
    flights["origin_code"] = flights["origin"].map({"EWR": 0, "JFK": 1, "LGA": 2})
    features = ["month", "day", "hour", "minute", "sched_dep_time", "sched_arr_time", "distance",
                "carrier_code", "origin_code", "temp", "dewp", "humid", "wind_dir", "wind_speed",
                "precip", "pressure", "visib"]
    train, validation = datasets.time_split(flights)
    files = {}
    for name, frame, n in (("train", train, 20_000), ("validation", validation, 30_000)):
        path = folder / name / f"{name}.csv"
        path.parent.mkdir(parents=True)
        frame.sample(n, random_state=0)[["delayed"] + features].to_csv(path, index=False)
        files[name] = path
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import boto3

    import labkit
    from sagemaker_helpers import ROLE, SKLEARN_IMAGE, tar_gz, wait_training

    aws = labkit.connect(quiet=True)
    s3, sm = boto3.client("s3"), boto3.client("sagemaker")
    bucket = f"bench-training-{int(time.time())}"
    s3.create_bucket(Bucket=bucket)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = channels(tmp / "data")
        for name, path in files.items():
            s3.upload_file(str(path), bucket, f"data/{name}/{path.name}")
        s3.put_object(Bucket=bucket, Key="src/sourcedir.tar.gz", Body=tar_gz({"train.py": TRAIN_PY.read_text()}))

        def direct():
            model = tmp / "model"
            model.mkdir(exist_ok=True)
            env = dict(os.environ, SM_CHANNEL_TRAIN=str(files["train"].parent),
                       SM_CHANNEL_VALIDATION=str(files["validation"].parent), SM_MODEL_DIR=str(model))
            out = subprocess.run([sys.executable, str(TRAIN_PY)], env=env, capture_output=True, text=True,
                                 check=True)
            return float(out.stdout.split("validation:auc=")[1].split()[0])

        def job():
            name = f"bench-{time.time_ns()}"
            sm.create_training_job(
                TrainingJobName=name, RoleArn=ROLE,
                HyperParameters={"sagemaker_program": "train.py",
                                 "sagemaker_submit_directory": f"s3://{bucket}/src/sourcedir.tar.gz"},
                AlgorithmSpecification={"TrainingImage": SKLEARN_IMAGE, "TrainingInputMode": "File",
                                        "MetricDefinitions": [{"Name": "validation:auc",
                                                               "Regex": r"validation:auc=([0-9.]+)"}]},
                InputDataConfig=[{"ChannelName": c, "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/data/{c}"}}} for c in ("train", "validation")],
                OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
                ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
                StoppingCondition={"MaxRuntimeInSeconds": 600})
            described = wait_training(sm, name, timeout=600)
            assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
            return described["FinalMetricDataList"][0]["Value"]

        times = {"train.py run directly": [], "local training job": []}
        values = {}
        for _ in range(args.repeat):  # interleaved, so a change in machine load hits both sides
            for label, fn in (("train.py run directly", direct), ("local training job", job)):
                start = time.perf_counter()
                values[label] = fn()
                times[label].append(time.perf_counter() - start)
        results = {label: (statistics.median(times[label]), values[label]) for label in times}
    direct_s, direct_auc = results["train.py run directly"]
    job_s, job_auc = results["local training job"]
    assert abs(direct_auc - job_auc) < 1e-6, "the job must train the same model"
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; median of {args.repeat}")
    print(f"{'train.py run directly':<26} {direct_s:7.2f} s   validation:auc={direct_auc:.6f}")
    print(f"{'local training job':<26} {job_s:7.2f} s   validation:auc={job_auc:.6f}")
    print(f"ratio job / direct: {job_s / direct_s:.2f}x  (overhead {job_s - direct_s:+.2f} s per job)")


if __name__ == "__main__":
    main()
