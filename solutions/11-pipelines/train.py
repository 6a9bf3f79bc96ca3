"""Script-mode training entry point for the flight-delay model (labs 07 and 08).

SageMaker runs this file in the scikit-learn container as ``python train.py --name value ...``:
hyper-parameters arrive as command-line arguments, the channels as folders named by
``SM_CHANNEL_TRAIN`` / ``SM_CHANNEL_VALIDATION``, and whatever is saved in ``SM_MODEL_DIR`` becomes
``model.tar.gz``. The line ``validation:auc=<value>`` is what the job's metric definition (a regex)
turns into the ``validation:auc`` metric that tuning optimises.

The CSV files have a header; the label column is ``delayed`` and every other column is a feature.
"""

import argparse
import glob
import os

import joblib
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

LABEL = "delayed"


def read_channel(name):
    """Every CSV file of one channel as one DataFrame."""
    folder = os.environ[f"SM_CHANNEL_{name.upper()}"]
    files = sorted(glob.glob(os.path.join(folder, "**", "*.csv"), recursive=True))
    if not files:
        raise ValueError(f"no CSV files in the {name} channel ({folder})")
    return pd.concat([pd.read_csv(path) for path in files], ignore_index=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=0, help="0 means unlimited")
    parser.add_argument("--min-samples-leaf", type=int, default=20)
    parser.add_argument("--l2-regularization", type=float, default=0.0)
    args, _ = parser.parse_known_args()  # tolerate extra arguments the platform may add

    train, validation = read_channel("train"), read_channel("validation")
    features = [c for c in train.columns if c != LABEL]
    model = HistGradientBoostingClassifier(
        learning_rate=args.learning_rate, max_iter=args.max_iter,
        max_depth=args.max_depth or None, min_samples_leaf=args.min_samples_leaf,
        l2_regularization=args.l2_regularization, random_state=0)
    model.fit(train[features], train[LABEL])

    train_auc = roc_auc_score(train[LABEL], model.predict_proba(train[features])[:, 1])
    auc = roc_auc_score(validation[LABEL], model.predict_proba(validation[features])[:, 1])
    print(f"train:auc={train_auc:.6f}")
    print(f"validation:auc={auc:.6f}")

    joblib.dump(model, os.path.join(os.environ["SM_MODEL_DIR"], "model.joblib"))


def model_fn(model_dir):
    """Inference contract (used when the model is deployed): load the saved model."""
    return joblib.load(os.path.join(model_dir, "model.joblib"))


if __name__ == "__main__":
    main()
