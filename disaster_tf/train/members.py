"""An ensemble's third member, the fine-tuned encoder: its run's config, and the blend of the members' scores.

With --encoder_member=DIR (configs/pretrained.flags) a run trains, after the network's phase (the CNN beside
the linear member fitted apart), a BERT encoder read from DIR under 36 heads of its own, in <model_dir>/encoder:
a run of its own (`encoder_config`: the fine-tune BENCHMARKS "encoder" measured alone), resumable like every run,
with the per-head class weights, in bfloat16 where the CPU has it natively (`precision.describe` says so in
the log). Then `blend`: both models score the tune and validation messages from raw text through their own
featurizers (the encoder's WordPiece tokenizer in the graph), as the export does; the served scores are

  (1 - w) * the ensemble's (the mean of its CNN and its linear member) + w * the encoder's

with w = 1/3 (the mean of the three members) or 1/2 (the encoder weighs as much as the other two together:
the mean of the two exports BENCHMARKS "encoder" measured), whichever gives the higher tune Total at thresholds
tuned on tune; then the thresholds tuned on tune for that blend and the report on validation, which chose
nothing. All of it goes into <model_dir>/members.json, which export.py reads (`read`).

Why after the network rather than held fixed while it trains: every member has its own loss, so a fixed
encoder would change only which of the CNN's epochs is kept, and would run its forward pass at every step.
"""

import dataclasses
import json
import os
import time
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf import records
from disaster_tf.data import examples as examples_lib
from disaster_tf.model import features
from disaster_tf.model import metrics
from disaster_tf.model import networks
from disaster_tf.model import precision as precision_lib
from disaster_tf.train import checkpoint as ckpt_lib
from disaster_tf.train import distribute
from disaster_tf.train import inputs
from disaster_tf.train import steps

WEIGHTS = (1 / 3, 1 / 2)  # the encoder's share of the scores: each member alike, or as much as the other two
SCORE_BATCH = 256  # messages a call when the members score the tune and validation splits


def encoder_config(config: config_lib.Config) -> config_lib.Config:
  """The run that fine-tunes the encoder member, in <model_dir>/encoder: BERT's recipe, as configs/pretrained.flags
  had it before the encoder became a member.

  Length 64 (95% of the messages are 62 pieces or fewer), 5e-5 with the cosine decay to 0 (BERT's paper: 2e-5 to
  5e-5), batch 32, --encoder_epochs passes, every one run (patience 0, the best on tune kept), BERT's own dropout
  0.1, the default's per-head class weights (unweighted, the rare categories were lost: QUALITY_NOTES.md), and
  bfloat16 where the CPU or GPU computes it natively ("auto"); the same data, split and seed as the run.
  """
  tc = config.train
  model = config_lib.ModelConfig(architecture="encoder", pretrained_encoder=tc.encoder_member, sequence_length=64,
                                 dropout=0.1)
  train = dataclasses.replace(tc, epochs=tc.encoder_epochs, learning_rate=5e-5, batch_size=32, patience=0,
                              lr_schedule="cosine", optimizer="adam", class_weight="sqrt_balanced",
                              class_weight_cap=50.0, linear_epochs=0, precision="auto", jit_compile=False,
                              language_gate=False, route_english=False, refit=False, encoder_member="")
  return config_lib.Config(model=model, train=train)


@dataclasses.dataclass(frozen=True)
class Blend:
  """A three-member run's `members.json`: how its ensemble and its encoder member are mixed, and how well.

  Attributes:
    weight: the encoder's share of the scores (`WEIGHTS`).
    tune_totals: {weight as "0.333": tune Total at thresholds tuned on tune}: what chose `weight`.
    report: the blend on validation at its thresholds (tuned on tune) and at 0.5.
    network_checkpoint, encoder_checkpoint: the two models' best checkpoints it was made of.
    seconds: the phase's wall time (scoring both splits with both models, choosing, tuning).
  """

  weight: float
  tune_totals: Dict[str, float]
  report: records.FinalReport
  network_checkpoint: str
  encoder_checkpoint: str
  seconds: float = 0.0

  def to_json(self) -> Dict[str, Any]:
    return {"weight": self.weight, "tune_totals": dict(self.tune_totals), "report": self.report.to_json(),
            "network_checkpoint": self.network_checkpoint, "encoder_checkpoint": self.encoder_checkpoint,
            "seconds": self.seconds}

  @classmethod
  def from_json(cls, raw: Dict[str, Any]) -> "Blend":
    return cls(float(raw["weight"]), {str(k): float(v) for k, v in raw["tune_totals"].items()},
               records.FinalReport.from_json(raw["report"]), str(raw["network_checkpoint"]),
               str(raw["encoder_checkpoint"]), float(raw.get("seconds", 0.0)))


def read(model_dir: str) -> Optional[Blend]:
  """The blend `blend` wrote into `model_dir`, or None if it has none.

  Raises:
    ValueError: members.json is not as training writes it (named).
  """
  path = os.path.join(model_dir, ckpt_lib.MEMBERS_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      blend_record = Blend.from_json(json.load(f))
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise ValueError(f"{path}: not a members file written by train.py ({type(e).__name__}: {e}); run the same "
                     "train.py command again to write it anew") from None
  if not (0.0 < blend_record.weight < 1.0 and len(blend_record.report.thresholds) == len(labels.CATEGORIES)):
    raise ValueError(f"{path}: weight {blend_record.weight} or its thresholds are not a blend's (a weight in "
                     "(0, 1), 36 thresholds); run the same train.py command again to write it anew")
  return blend_record


def blend(config: config_lib.Config, dirs: distribute.RunDirs, network: records.FinalReport,
          decisions: Optional[str] = None) -> records.FinalReport:
  """The members' phase (see the module docstring): mixes the network's and the encoder's scores, tunes the
  thresholds, reports on validation, writes members.json (the chief); returns the blend's report.

  A members.json made of the same two checkpoints (by name: a model dir moved elsewhere keeps its blend) is kept:
  the same models give the same blend.

  Args:
    network: the network's own final report (its checkpoint, the data it learnt from).
    decisions: the run's snapshot of the operators' decisions (--decisions), as its phases read.
  """
  encoder_dir = os.path.join(dirs.model_dir, ckpt_lib.ENCODER_DIR)
  encoder_checkpoint = ckpt_lib.resolve(encoder_dir, "best")
  kept = read(dirs.model_dir)
  if kept is not None and _names(kept.network_checkpoint, kept.encoder_checkpoint) == _names(network.checkpoint,
                                                                                             encoder_checkpoint):
    logging.info("members: kept %s (encoder weight %.2f)", ckpt_lib.MEMBERS_FILE, kept.weight)
    return kept.report
  start, tc = time.time(), config.train
  scratch = os.path.join(dirs.scratch, "members")
  os.makedirs(scratch, exist_ok=True)
  splits, languages, _, _ = inputs.load_splits(config, scratch, decisions)
  models = (scorer(ckpt_lib.load_model(dirs.model_dir, network.checkpoint)),
            scorer(ckpt_lib.load_model(encoder_dir, encoder_checkpoint)))
  tune = [score(m, splits.tune) for m in models] if len(splits.tune) else None
  weight, totals, thresholds, source = _choose(splits.tune.labels, tune, tc)
  validation = _mixed(models, splits.validation, weight)
  truth = splits.validation.labels
  report = dataclasses.replace(
      network, scores=metrics.report(truth, validation.labels(thresholds)),
      at_half=metrics.report(truth, validation.labels(labels.default_thresholds())),
      thresholds=dict(zip(labels.CATEGORIES, thresholds.tolist())), threshold_source=source,
      languages={name: metrics.report(split.labels, _mixed(models, split, weight).labels(thresholds))
                 for name, split in languages})
  if dirs.chief:
    record = Blend(weight, totals, report, network.checkpoint, encoder_checkpoint, time.time() - start)
    config_lib.write_text_atomic(os.path.join(dirs.model_dir, ckpt_lib.MEMBERS_FILE),
                                 json.dumps(record.to_json(), indent=1) + "\n")
  logging.info("members: the ensemble and the encoder, encoder weight %.2f (tune Total %s), in %.0fs: validation "
               "Total %.2f, mean positive F1 %.3f (the ensemble alone %.2f, %.3f)", weight, ", ".join(
                   f"{k}: {v:.2f}" for k, v in totals.items()), time.time() - start, report.scores.total,
               report.scores.mean_positive_f1, network.scores.total, network.scores.mean_positive_f1)
  return report


def _names(*checkpoints: str) -> Tuple[str, ...]:
  """The checkpoints' names within their model dirs (best/ckpt-N is unique by step)."""
  return tuple(os.path.basename(c) for c in checkpoints)


def _choose(truth: np.ndarray, tune: Optional[Sequence[Tuple[steps.Predictions, np.ndarray]]],
            train_config: config_lib.TrainConfig) -> Tuple[float, Dict[str, float], np.ndarray, str]:
  """(the encoder's weight, the tune Total of each weight, the [36] thresholds, their source in words), chosen on
  tune (`tune`: the network's and the encoder's `score`); without a tune split, the mean of the three members at
  0.5."""
  tc = train_config
  if tune is None:
    return WEIGHTS[0], {}, labels.default_thresholds(), "0.5 (no tune split), encoder weight 1/3"
  tried = {}
  for weight in WEIGHTS:
    mixed = mix(tune[0][0], tune[1][0], weight, tune[0][1])
    thresholds = metrics.tune_thresholds(truth, mixed.scores, tc.min_tune_positives, tc.threshold_objective)
    tried[weight] = (metrics.report(truth, mixed.labels(thresholds)).total, thresholds)
  weight = max(WEIGHTS, key=lambda w: tried[w][0])
  return (weight, {f"{w:.3f}": t for w, (t, _) in tried.items()}, tried[weight][1],
          f"tuned on the tune split ({len(truth)} messages) for {tc.threshold_objective}, the encoder weighing "
          f"{weight:.2f} (its tune Total the higher)")


def mix(network: steps.Predictions, encoder: steps.Predictions, weight: float,
        has_tokens: np.ndarray) -> steps.Predictions:
  """(1 - weight) * the network's probabilities + weight * the encoder's, nothing where the network's featurizer
  finds no token ([N] bool `has_tokens`): what the export serves (module.Blend)."""
  scores, related = networks.nothing_applies(tf.constant((1 - weight) * network.scores + weight * encoder.scores),
                                             tf.constant((1 - weight) * network.related + weight * encoder.related),
                                             tf.constant(has_tokens))
  return steps.Predictions(0.0, scores.numpy(), related.numpy())


def scorer(loaded: ckpt_lib.LoadedModel):
  """A model's compiled function of [batch] raw texts -> (scores [batch, 36], related [batch, 3], has_tokens
  [batch]), through its own featurizer, as its export computes them (`networks.probabilities`, the no-token rule)."""
  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def run(texts):
    model_inputs = loaded.featurizer(texts)
    tokens = features.has_tokens(model_inputs)
    return networks.probabilities(loaded.model(model_inputs, training=False), tokens) + (tokens,)
  return run


def score(run, examples: examples_lib.Examples) -> Tuple[steps.Predictions, np.ndarray]:
  """A `scorer`'s probabilities of the examples' raw texts (the loss is not computed: 0), and which have a token
  ([N] bool)."""
  outputs = [run(texts) for texts in examples.texts().batch(SCORE_BATCH)]
  return (steps.Predictions(0.0, *(np.concatenate([o[k].numpy() for o in outputs]) for k in (0, 1))),
          np.concatenate([o[2].numpy() for o in outputs]))


def _mixed(models: Sequence[Any], examples: examples_lib.Examples, weight: float
           ) -> steps.Predictions:
  """The blend of the two models' scores (`models`: their `scorer`s) of `examples` at `weight`."""
  (network, tokens), (encoder, _) = (score(m, examples) for m in models)
  return mix(network, encoder, weight, tokens)


def describe_precision(config: config_lib.Config) -> str:
  """What the encoder member computes in, and why, for the log."""
  return precision_lib.describe(encoder_config(config).train.precision)
