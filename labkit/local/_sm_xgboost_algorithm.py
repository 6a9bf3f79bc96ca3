"""The built-in SageMaker XGBoost algorithm, run locally on the xgboost package.

Run by the training engine as ``python -m labkit.local._sm_xgboost_algorithm`` inside the job's
``/opt/ml``-like tree (``SM_*`` variables). Like the real algorithm: channels ``train`` (required)
and ``validation`` (optional); CSV with the label in the first column and no header (or libsvm,
or Parquet with the label first); hyper-parameters from ``hyperparameters.json``; each round logs
``[N]#011train-<metric>:<v>#011validation-<metric>:<v>`` (the tab shows as #011 in CloudWatch),
which the algorithm's metric definitions read; the model is saved as ``xgboost-model``.
Data problems fail with a ``ClientError: ...`` written to ``/opt/ml/output/failure``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

_INTS = {"num_round", "max_depth", "early_stopping_rounds", "num_class", "max_leaves", "max_bin",
         "seed", "nthread", "max_delta_step", "num_parallel_tree", "verbosity"}
_STRINGS = {"objective", "eval_metric", "booster", "tree_method", "grow_policy", "sample_type",
            "normalize_type", "updater", "process_type", "dsplit", "interaction_constraints",
            "monotone_constraints", "multi_strategy", "csv_weights", "save_model_on_termination",
            "prob_buffer_row", "_kfold", "_num_cv_round", "_tuning_objective_metric"}


class ClientError(Exception):
    pass


def _params(raw: dict[str, str]) -> dict:
    params = {}
    for name, value in raw.items():
        if name.startswith("sagemaker_") or name.startswith("_"):
            continue
        value = json.loads(value) if isinstance(value, str) and value.startswith('"') else value
        try:
            if name in _INTS:
                params[name] = int(float(value))
            elif name in _STRINGS:
                params[name] = str(value)
            else:
                params[name] = float(value)
        except ValueError:
            raise ClientError(f"ClientError: Hyperparameter {name}: value {value!r} is not valid") from None
    if "num_round" not in params:
        raise ClientError("ClientError: Missing required hyperparameter: num_round")
    return params


def _content_type(channel: str) -> str:
    config = json.loads(Path(os.environ["SM_INPUT_CONFIG_DIR"], "inputdataconfig.json").read_text())
    return (config.get(channel, {}).get("ContentType") or "text/libsvm").split(";")[0].strip().lower()


def _load(channel: str):
    import numpy as np
    import pandas as pd

    folder = Path(os.environ["SM_INPUT_DIR"]) / "data" / channel
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ClientError(f"ClientError: No data in the {channel} channel")
    kind = _content_type(channel)
    if kind in {"text/csv", "csv"}:
        frames = []
        for path in files:
            try:
                frames.append(pd.read_csv(path, header=None, compression="infer"))
            except pd.errors.EmptyDataError:
                continue
        if not frames:
            raise ClientError(f"ClientError: No data in the {channel} channel")
        frame = pd.concat(frames, ignore_index=True)
        non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if non_numeric:
            sample = frame[non_numeric[0]].dropna().astype(str).iloc[0]
            raise ClientError(f"ClientError: Non-numeric value '{sample}' found in the {channel} "
                              "channel's CSV (column "
                              f"{non_numeric[0]}): the algorithm needs numbers only, label first, "
                              "no header row")
        values = frame.to_numpy(dtype="float64")
        return values[:, 1:], values[:, 0]
    if kind in {"application/x-parquet", "parquet"}:
        frame = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
        values = frame.to_numpy(dtype="float64")
        return values[:, 1:], values[:, 0]
    if kind in {"text/libsvm", "libsvm", "text/x-libsvm"}:
        from sklearn.datasets import load_svmlight_files

        try:
            parts = load_svmlight_files([str(p) for p in files])
        except ValueError as exc:
            raise ClientError(f"ClientError: the {channel} channel is not valid libsvm ({exc}); "
                              "for CSV set ContentType='text/csv'") from None
        import scipy.sparse as sp

        x = sp.vstack(parts[0::2]).tocsr()
        y = np.concatenate(parts[1::2])
        return x, y
    raise ClientError(f"ClientError: Content type {kind} is not supported; use text/csv, text/libsvm "
                      "or application/x-parquet")


def main() -> int:
    import xgboost as xgb

    model_dir = Path(os.environ["SM_MODEL_DIR"])
    failure = Path(os.environ["SM_OUTPUT_DIR"]) / "failure"
    try:
        raw = json.loads(Path(os.environ["SM_INPUT_CONFIG_DIR"], "hyperparameters.json").read_text())
        params = _params(raw)
        channels = json.loads(os.environ.get("SM_CHANNELS", "[]"))
        if "train" not in channels:
            raise ClientError("ClientError: the train channel is required")
        x, y = _load("train")
        dtrain = xgb.DMatrix(x, label=y)
        evals = [(dtrain, "train")]
        if "validation" in channels:
            vx, vy = _load("validation")
            if vx.shape[1] != x.shape[1]:
                raise ClientError(f"ClientError: the validation channel has {vx.shape[1]} features, "
                                  f"the train channel {x.shape[1]}")
            evals.append((xgb.DMatrix(vx, label=vy), "validation"))
        num_round = params.pop("num_round")
        early = params.pop("early_stopping_rounds", None)
        metrics = params.pop("eval_metric", None)
        if metrics:
            params["eval_metric"] = [m.strip() for m in metrics.split(",") if m.strip()]
        params.setdefault("nthread", int(os.environ.get("SM_NUM_CPUS", "1")))
        print(f"[labkit] XGBoost {xgb.__version__}, train {x.shape[0]} rows x {x.shape[1]} features",
              flush=True)
        booster = xgb.train(params, dtrain, num_boost_round=num_round, evals=evals,
                            early_stopping_rounds=early if len(evals) > 1 else None,
                            verbose_eval=True)
    except ClientError as exc:
        failure.write_text(str(exc))
        print(str(exc), file=sys.stderr, flush=True)
        return 1
    except xgb.core.XGBoostError as exc:
        message = str(exc).strip().splitlines()[0]
        failure.write_text(f"ClientError: {message}")
        print(message, file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # what the real algorithm reports for an unexpected error
        failure.write_text(f"AlgorithmError: framework error: {type(exc).__name__}: {exc}")
        raise
    booster.save_model(str(model_dir / "xgboost-model"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
