"""Shared helpers for the SageMaker training / tuning contract tests (small flights data, scripts)."""

from __future__ import annotations

import io
import tarfile
import time

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
FEATURES = ["month", "day", "hour", "sched_dep_time", "distance", "temp", "dewp", "humid",
            "wind_speed", "precip", "pressure", "visib"]
AUC_METRIC = [{"Name": "validation:auc", "Regex": r"validation:auc=([0-9.]+)"}]

TRAIN_PY = '''
import argparse, glob, os
import joblib, pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

parser = argparse.ArgumentParser()
parser.add_argument("--max-iter", type=int, default=40)
parser.add_argument("--learning-rate", type=float, default=0.1)
parser.add_argument("--max-depth", type=int, default=3)
args = parser.parse_args()

def read(channel):
    files = sorted(glob.glob(os.path.join(os.environ["SM_CHANNEL_" + channel.upper()], "*.csv")))
    return pd.concat([pd.read_csv(f) for f in files])

train, validation = read("train"), read("validation")
x, y = train.drop(columns="delayed"), train["delayed"]
model = HistGradientBoostingClassifier(max_iter=args.max_iter, learning_rate=args.learning_rate,
                                       max_depth=args.max_depth, random_state=0).fit(x, y)
auc = roc_auc_score(validation["delayed"], model.predict_proba(validation.drop(columns="delayed"))[:, 1])
print(f"validation:auc={auc!r}")
joblib.dump(model, os.path.join(os.environ["SM_MODEL_DIR"], "model.joblib"))
'''


def flights_sample(n_train: int = 3000, n_validation: int = 2000):
    """A small, deterministic time split of the labelled flights (features + ``delayed``)."""
    from labkit import datasets

    train, validation = datasets.time_split(datasets.add_label(datasets.joined()))
    columns = FEATURES + ["delayed"]
    return (train[columns].sample(n_train, random_state=1).reset_index(drop=True),
            validation[columns].sample(n_validation, random_state=2).reset_index(drop=True))


def tar_gz(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def untar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def wait_training(sm, name: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in {"Completed", "Failed", "Stopped"}:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} still {job['TrainingJobStatus']} after {timeout}s")
        time.sleep(0.2)


def script_job(name: str, bucket: str, source_key: str, hyper_parameters: dict | None = None,
               image: str = SKLEARN_IMAGE, metrics=AUC_METRIC, channels=("train", "validation"),
               max_runtime: int = 600) -> dict:
    """create_training_job arguments for a script-mode job (as the v2 SDK / boto3 users send it)."""
    hps = {"sagemaker_program": '"train.py"',
           "sagemaker_submit_directory": f'"s3://{bucket}/{source_key}"'}
    hps.update(hyper_parameters or {})
    return dict(
        TrainingJobName=name, RoleArn=ROLE, HyperParameters=hps,
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File",
                                "MetricDefinitions": metrics},
        InputDataConfig=[{"ChannelName": c, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/data/{c}",
            "S3DataDistributionType": "FullyReplicated"}}} for c in channels],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": max_runtime})
