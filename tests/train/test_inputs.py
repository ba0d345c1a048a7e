"""A run's first phase alone: data, splits, checks, vocabulary, weights, vectorised caches."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import labels
from disaster_tf.data import decided as decided_lib
from disaster_tf.data import decisions
from disaster_tf.data import keys
from disaster_tf.data import examples as examples_lib
from disaster_tf.model import features
from disaster_tf.model import losses
from disaster_tf.train import inputs
from disaster_tf.train import loop
from tests import fixtures


@pytest.fixture
def prepared(tmp_path):
  """prepare() on 200 generated rows, a word in validation messages only, and a 50-example shuffle buffer."""
  rows = fixtures.synthetic_rows(200)
  config = fixtures.tiny_config(str(tmp_path / "data"), shuffle_buffer=50)
  is_validation = examples_lib.split_ids([r["id"] for r in rows], 0.25, config.train.tune_fraction,
                                 config.train.split_seed) == examples_lib.VALIDATION
  for r, v in zip(rows, is_validation):
    if v:
      r["message"] += " zanzibarx"
  fixtures.write_two_file(tmp_path / "data", rows)
  os.makedirs(tmp_path / "scratch")
  return config, str(tmp_path / "scratch"), inputs.prepare(config, str(tmp_path / "scratch"))


def test_prepare_splits_by_id_and_derives_everything_from_the_training_split(prepared):
  config, _, run = prepared
  train, tune, validation = run.splits
  assert len(train) + len(tune) + len(validation) == run.load_report.examples == 200
  assert not set(train.ids) & set(validation.ids) and not set(tune.ids) & set(validation.ids)
  for vocabulary in run.vocabularies.values():  # adapted on train only
    assert "water" in vocabulary.tokens and "zanzibarx" not in vocabulary.tokens
  expected = losses.class_weight_table(config.train.class_weight, losses.label_counts(train.labels),
                                       config.train.class_weight_cap)
  np.testing.assert_array_equal(run.class_weights, expected)
  assert run.steps_per_epoch == len(train) // config.train.batch_size
  assert run.selection_name == "tune" and run.selection is tune and run.selection_ds is run.tune_ds


def test_prepare_caches_training_blocks_and_batched_evaluation_splits(prepared):
  config, scratch, run = prepared
  assert len(run.train_blocks) == 3  # ~150 training examples in blocks of at most 50
  names = os.listdir(scratch)
  assert all(any(n.startswith(f"train-{i}") for n in names) for i in range(3))  # filled before epoch 1
  assert sum(examples_lib.length(b) for b in run.train_blocks) == len(run.splits.train)
  batch, label_matrix = next(iter(run.validation_ds))
  assert set(batch) == set(features.input_names(config.model)) and label_matrix.shape[1] == labels.NUM_CATEGORIES
  assert batch[features.TOKEN_IDS].shape[1] == config.model.sequence_length
  validation_labels = np.concatenate([y.numpy() for _, y in run.validation_ds])
  np.testing.assert_array_equal(validation_labels, run.splits.validation.labels)  # in order, every example


def test_prepare_reuses_a_given_vocabulary(prepared):
  config, scratch, run = prepared
  tokens = run.vocabularies[features.TOKEN_IDS].tokens[:-1] + ("zanzibarx",)
  given = {**run.vocabularies, features.TOKEN_IDS: features.Vocabulary(tokens)}
  again = inputs.prepare(config, scratch, vocabularies=given)
  assert again.vocabularies is given
  ids = again.featurizer(tf.constant(["zanzibarx"]))[features.TOKEN_IDS].numpy()
  assert ids[0, 0] == len(tokens) - 1


def test_without_a_tune_split_selection_is_on_validation(tmp_path):
  fixtures.write_two_file(tmp_path / "d", fixtures.synthetic_rows(60))
  run = inputs.prepare(fixtures.tiny_config(str(tmp_path / "d"), tune_fraction=0.0), str(tmp_path))
  assert run.tune_ds is None and not len(run.splits.tune)
  assert run.selection_name == "validation" and run.selection_ds is run.validation_ds


@pytest.mark.parametrize("overrides, rows, message", [
    (dict(batch_size=1000), 40, r"batch_size=1000 is larger than the training split \(\d+ examples\); lower"),
    (dict(validation_fraction=1e-9), 40, "the validation split is empty .*raise --validation_fraction"),
    (dict(tune_fraction=1e-9), 40, "the tune split is empty .*or set it to 0"),
])
def test_prepare_refuses_splits_a_run_cannot_use(tmp_path, overrides, rows, message):
  fixtures.write_two_file(tmp_path / "d", fixtures.synthetic_rows(rows))
  config = fixtures.tiny_config(str(tmp_path / "d"), **overrides)
  with pytest.raises(ValueError, match=message):
    inputs.prepare(config, str(tmp_path))


def test_prepare_writes_only_below_scratch(tmp_path):
  fixtures.write_two_file(tmp_path / "d", fixtures.synthetic_rows(60))
  os.makedirs(tmp_path / "scratch")
  config = fixtures.tiny_config(str(tmp_path / "d"))
  inputs.prepare(config, str(tmp_path / "scratch"))
  assert sorted(os.listdir(tmp_path)) == ["d", "scratch"]


def test_original_copies_reads_each_training_original_that_many_times_an_epoch(tmp_path):
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(200), originals=True)
  for copies in (1, 3):
    config = fixtures.tiny_config(str(tmp_path / "data"), text_fields=("message", "original"),
                                  original_copies=copies, shuffle_buffer=50)
    os.makedirs(tmp_path / f"scratch{copies}")
    run = inputs.prepare(config, str(tmp_path / f"scratch{copies}"))
    train, originals = run.splits.train, run.splits.train.field(examples_lib.ORIGINAL)
    read = np.concatenate([np.stack([y.numpy() for _, y in block]) for block in run.train_blocks])
    assert len(originals) and len(read) == len(train) + (copies - 1) * len(originals)
    # What is read again is the originals: the labels add up to theirs, repeated.
    np.testing.assert_array_equal(read.sum(0), train.labels.sum(0) + (copies - 1) * originals.labels.sum(0))
    assert run.steps_per_epoch == len(read) // config.train.batch_size


def test_decisions_override_the_data_keep_their_side_and_count_in_the_fingerprint(tmp_path):
  rows = fixtures.synthetic_rows(160)
  fixtures.write_two_file(tmp_path / "d", rows)
  config = fixtures.tiny_config(str(tmp_path / "d"))
  side = dict(zip((r["id"] for r in rows), examples_lib.split_ids([r["id"] for r in rows], 0.25, 0.1, "disaster_tf")))
  trained = next(r for r in rows if side[r["id"]] == examples_lib.TRAIN)
  held_out = next(r for r in rows if side[r["id"]] == examples_lib.VALIDATION)
  store = decisions.Store(str(tmp_path / "d.db"))
  for row in (trained, held_out):
    store.record(decisions.Decision(keys.message_key(row["id"], row["message"]), row["message"], (1,) * 36,
                                    "ana"))
  new = [f"a message pasted on the page, number {k}" for k in range(12)]  # by their hash, ~3 would not train
  for text in new:
    store.record(decisions.Decision(keys.message_key(None, text), text, (1,) + (0,) * 35, "ana"))
  decided_lib.take_snapshot(store, str(tmp_path / "snapshot"))
  (tmp_path / "s1").mkdir()
  (tmp_path / "s2").mkdir()
  plain = inputs.prepare(config, str(tmp_path / "s1"))
  with_decisions = dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                        decisions=str(tmp_path / "d.db")))
  with pytest.raises(ValueError, match="--decisions=.*d.db: the run.s snapshot of them is missing"):
    inputs.prepare(with_decisions, str(tmp_path / "s2"))  # never trained without them, silently
  decided = inputs.prepare(with_decisions, str(tmp_path / "s2"), decisions=str(tmp_path / "snapshot"))
  assert decided.load_report.fingerprint != plain.load_report.fingerprint  # a resume on other data is refused
  assert decided.load_report.source == f"{tmp_path / 'd'} with the decisions of {tmp_path / 'd.db'}"
  train_labels = dict(zip(decided.splits.train.ids, decided.splits.train.labels.tolist()))
  assert train_labels[trained["id"]] == [1] * 36  # the decision overrides the data's labels
  assert held_out["id"] in decided.splits.validation.ids  # a decided validation message stays in validation
  assert held_out["id"] not in train_labels
  trained_texts = {t.decode() for t in decided.splits.train.texts().as_numpy_iterator()}
  assert all(text in trained_texts for text in new)  # every new message trains, whatever its hash
  assert len(decided.decided) == 14
  assert loop.training_summary(decided.splits.train, decided.decided).decisions == 13  # all but held_out


def test_pairs_put_each_training_message_beside_its_original_or_an_empty_text(tmp_path):
  rows = fixtures.synthetic_rows(120)
  for r in rows[::3]:
    r["original"] = ""  # a third of the messages were sent in English: no original
  fixtures.write_two_file(tmp_path / "data", rows, originals=True)
  (tmp_path / "scratch").mkdir()
  config = fixtures.tiny_config(str(tmp_path / "data"), text_fields=("message", "original"), pairs=True,
                                original_copies=2, shuffle_buffer=30)
  run = inputs.prepare(config, str(tmp_path / "scratch"))
  messages = run.splits.train.field(examples_lib.MESSAGE)
  assert len(run.train_blocks) > 1 and run.steps_per_epoch == len(messages) // config.train.batch_size
  elements = [e for block in run.train_blocks for e in block.as_numpy_iterator()]
  assert len(elements) == len(messages)  # no copies: one row a message
  by_id = {r["id"]: r for r in rows}
  vocabulary = run.featurizer.vocabularies[features.TOKEN_IDS].tokens
  for k, (inputs_, labels_, originals, present) in enumerate(elements):
    row = by_id[messages.ids[k]]
    np.testing.assert_array_equal(labels_, messages.labels[k])
    assert present == (1.0 if row["original"] else 0.0)
    sent = [vocabulary[i] for i in originals[features.TOKEN_IDS] if i > 1]
    said = [vocabulary[i] for i in inputs_[features.TOKEN_IDS] if i > 1]
    # Each side reads its own text: the original's words (or none), the translation's words.
    assert bool(sent) == bool(row["original"]) and set(sent) <= set(row["original"].lower().strip("!").split())
    assert said and set(said) <= set(row["message"].lower().strip("!").split())
