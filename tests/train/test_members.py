"""The encoder member's run config and the blend's arithmetic (the trained run: tests/serve/test_blend.py)."""

import numpy as np

from disaster_tf.train import members
from disaster_tf.train import steps
from tests import fixtures


def test_the_encoder_member_fine_tunes_as_bert_did_on_the_runs_data_split_and_seed():
  config = fixtures.tiny_config("some/data", linear_epochs=2, encoder_member="bert/dir", encoder_epochs=3, seed=7)
  encoder = members.encoder_config(config)
  assert encoder.model.architecture == "encoder" and encoder.model.pretrained_encoder == "bert/dir"
  assert encoder.model.sequence_length == 64 and encoder.model.dropout == 0.1
  t = encoder.train
  assert (t.epochs, t.learning_rate, t.batch_size, t.patience, t.precision) == (3, 5e-5, 32, 0, "auto")
  assert (t.data, t.seed, t.split_seed, t.validation_fraction) == ("some/data", 7, config.train.split_seed, 0.25)
  assert not (t.encoder_member or t.linear_epochs or t.language_gate or t.refit)  # a run of one model


def test_the_mix_weighs_the_encoder_by_its_share():
  ensemble = steps.Predictions(1.0, np.full((2, 36), 0.2, np.float32), np.tile([[0.6, 0.4, 0.0]], (2, 1)))
  encoder = steps.Predictions(2.0, np.full((2, 36), 0.8, np.float32), np.tile([[0.0, 1.0, 0.0]], (2, 1)))
  mixed = members.mix(ensemble, encoder, 1 / 3, np.array([True, False]))
  np.testing.assert_allclose(mixed.scores[0], 0.4)
  np.testing.assert_allclose(mixed.related[0], [0.4, 0.6, 0.0], rtol=1e-6)
  assert not mixed.scores[1].any() and mixed.related[1].tolist() == [1, 0, 0]  # no token: nothing applies


def test_without_a_tune_split_the_three_members_weigh_alike_at_half():
  config = fixtures.tiny_config("data", tune_fraction=0.0)
  weight, totals, thresholds, source = members._choose(np.zeros((0, 36)), None, config.train)  # pylint: disable=protected-access
  assert weight == 1 / 3 and totals == {} and (thresholds == 0.5).all() and source.startswith("0.5")
