"""The classic reference to beat: TF-IDF word n-grams + one logistic regression per category (scikit-learn).

  python bench/reference.py [--data=../shared/data]      # prints its scores; bench/quality.py records them

The pipeline most disaster-response projects ship, exactly as issue 11 states
it: TF-IDF over word uni- and bigrams (sublinear tf, min_df 2, accents
stripped), one scikit-learn LogisticRegression per category (class_weight
"balanced", C = 4; `related`'s three classes in one multinomial model),
trained on the train side of the project's own id split and scored by the
project's own metrics code on the validation side, at 0.5 and at thresholds
tuned on the tune side, like every other row. scikit-learn is the `bench`
extra only (`pip install -e .[bench]`).
"""

import json
import sys
import tempfile
import time
from typing import Any, Dict

import numpy as np
from absl import app
from absl import flags

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf.data import csv_files
from disaster_tf.data import examples as examples_lib
from disaster_tf.model import metrics

C = 4.0  # the pipeline's regularisation, as stated in the issue
MAX_ITER = 2000  # lbfgs converges well before this here; the default 100 warns


def _probabilities(models, features) -> np.ndarray:
  """[N, 36] scores as the project defines them: P(related = 1), then P(category applies)."""
  columns = []
  for model in models:
    if model is None:  # a category with no positives in training (child_alone): never predicted
      columns.append(np.zeros(features.shape[0]))
    else:  # for `related`, class 1 of its three
      columns.append(model.predict_proba(features)[:, list(model.classes_).index(1)])
  return np.stack(columns, axis=1)


def _decisions(models, features, scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
  decided = (scores >= thresholds[np.newaxis, :]).astype(np.int32)
  decided[:, labels.RELATED_INDEX] = models[labels.RELATED_INDEX].predict(features)  # argmax of 3 classes
  return decided


def fit(train_texts, train_labels: np.ndarray):
  """(the fitted TfidfVectorizer, one LogisticRegression per category or None) on [N] texts, [N, 36] labels."""
  from sklearn.feature_extraction.text import TfidfVectorizer  # pylint: disable=import-outside-toplevel
  from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
  vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, strip_accents="unicode")
  train_features = vectorizer.fit_transform(train_texts)
  models = []
  for k in range(labels.NUM_CATEGORIES):
    y = train_labels[:, k]
    if len(np.unique(y)) < 2:
      models.append(None)
      continue
    models.append(LogisticRegression(C=C, class_weight="balanced", max_iter=MAX_ITER).fit(train_features, y))
  return vectorizer, models


def probabilities(fitted, texts) -> np.ndarray:
  """[N, 36] the fitted reference's scores of `texts` (`_probabilities`)."""
  vectorizer, models = fitted
  return _probabilities(models, vectorizer.transform(texts))


def final_report(fitted, splits: examples_lib.Splits, texts: Dict[str, Any],
                 train_config: config_lib.TrainConfig) -> Dict[str, Any]:
  """metrics.json's `final` of the fitted reference: thresholds tuned on tune, validation scored both ways."""
  vectorizer, models = fitted
  tune_features, validation_features = (vectorizer.transform(texts[n]) for n in ("tune", "validation"))
  thresholds = metrics.tune_thresholds(splits.tune.labels, _probabilities(models, tune_features),
                                       train_config.min_tune_positives)
  validation_scores = _probabilities(models, validation_features)
  truth = splits.validation.labels
  final = metrics.report(truth, _decisions(models, validation_features, validation_scores, thresholds)).to_json()
  final["at_0.5"] = metrics.report(truth, _decisions(models, validation_features, validation_scores,
                                                     labels.default_thresholds())).to_json()
  final["thresholds"] = dict(zip(labels.CATEGORIES, np.asarray(thresholds, float).tolist()))
  final["best_epoch"] = "-"
  return final


def fit_and_score(data_path: str, train_config: config_lib.TrainConfig, keep: bool = False) -> Dict[str, Any]:
  """Fits the reference on the train split; returns a metrics.json-like body (final report, fit seconds; with
  `keep`, the fitted reference too, as `fitted`)."""
  with tempfile.TemporaryDirectory() as spool:
    examples, _ = csv_files.load(data_path, spool)
    splits = examples_lib.split(examples, train_config)
    texts = {name: getattr(splits, name).read_texts() for name in examples_lib.SPLIT_NAMES}
  start = time.time()
  fitted = fit(texts["train"], splits.train.labels)
  fit_seconds = time.time() - start
  body = {"final": final_report(fitted, splits, texts, train_config), "epochs": [], "fit_seconds": fit_seconds}
  if keep:
    body["fitted"] = fitted
  return body


def main(argv):
  del argv
  body = fit_and_score(flags.FLAGS.data, config_lib.TrainConfig())
  print(json.dumps({k: body["final"][k] for k in ("total", "mean_positive_f1", "micro_f1")}),
        f"fit {body['fit_seconds']:.0f} s", file=sys.stdout)


if __name__ == "__main__":
  flags.DEFINE_string("data", "../shared/data", "Data to fit and score on.")
  app.run(main)
