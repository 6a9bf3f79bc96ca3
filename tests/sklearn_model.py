"""A scikit-learn model packaged the way the SageMaker scikit-learn container serves it.

Shared by the hosting and Model Monitor engine tests and benchmarks/bench_endpoint.py: a
``model.tar.gz`` holding ``model.joblib`` and ``code/inference.py`` (the container's model_fn /
predict_fn contract), scored on the same six flight and weather features.
"""

from __future__ import annotations

import io
import tarfile

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
FEATURES = ["distance", "hour", "temp", "dewp", "humid", "wind_speed"]
INFERENCE = b'''
import os, joblib
def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
def predict_fn(data, model):
    return model.predict_proba(data)[:, 1]
'''


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A model.tar.gz (in memory) with the given member names and contents."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def model_archive(model) -> bytes:
    """``model`` (fitted, with predict_proba) as a model.tar.gz with the inference script."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return tar_gz({"model.joblib": buffer.getvalue(), "code/inference.py": INFERENCE})
