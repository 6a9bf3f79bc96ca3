"""Emulation overhead of a local endpoint: ``invoke_endpoint`` p50 vs in-process ``predict``.

Both sides score the same single flights row with the same scikit-learn model; the ratio is what
boto3 → HTTP → moto → the hosting engine → the inference contract costs on top of the model itself.
Run: ``.venv/bin/python benchmarks/bench_endpoint.py [--calls 300]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from sklearn_model import FEATURES, SKLEARN_IMAGE, model_archive  # noqa: E402  (tests/)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression

    import labkit
    from labkit import datasets

    aws = labkit.connect(quiet=True)
    frame = datasets.add_label(datasets.joined())
    frame = frame[frame.month <= 3][FEATURES + ["delayed"]].dropna().sample(5000, random_state=0)
    model = LogisticRegression(max_iter=500).fit(frame[FEATURES].to_numpy(), frame["delayed"].to_numpy())
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=aws.bucket)
    s3.put_object(Bucket=aws.bucket, Key="bench/model.tar.gz", Body=model_archive(model))
    sm = aws.client("sagemaker")
    sm.create_model(ModelName="bench-endpoint", ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
                    PrimaryContainer={"Image": SKLEARN_IMAGE,
                                      "ModelDataUrl": f"s3://{aws.bucket}/bench/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName="bench-endpoint", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "bench-endpoint", "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="bench-endpoint", EndpointConfigName="bench-endpoint")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="bench-endpoint")
    rt = aws.client("sagemaker-runtime")
    row = frame[FEATURES].to_numpy()[:1]
    body = ",".join(str(v) for v in row[0])
    for _ in range(20):  # warm up both paths
        rt.invoke_endpoint(EndpointName="bench-endpoint", Body=body, ContentType="text/csv")
        model.predict_proba(row)
    remote, local = [], []
    for _ in range(args.calls):
        start = time.perf_counter()
        rt.invoke_endpoint(EndpointName="bench-endpoint", Body=body, ContentType="text/csv")["Body"].read()
        remote.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.predict_proba(row)
        local.append(time.perf_counter() - start)
    p50_remote, p50_local = statistics.median(remote), statistics.median(local)
    p95_remote = sorted(remote)[int(0.95 * len(remote)) - 1]
    print(f"calls: {args.calls}")
    print(f"invoke_endpoint  p50 {p50_remote * 1e3:8.2f} ms   p95 {p95_remote * 1e3:8.2f} ms")
    print(f"in-process predict p50 {p50_local * 1e3:8.3f} ms")
    print(f"ratio (p50 invoke / p50 predict): {p50_remote / p50_local:.1f}x")
    added = statistics.median(r - p for r, p in zip(remote, local))
    print(f"added by the endpoint (median of per-call differences, target <= 3 ms): {added * 1e3:.2f} ms")
    sm.delete_endpoint(EndpointName="bench-endpoint")


if __name__ == "__main__":
    main()
