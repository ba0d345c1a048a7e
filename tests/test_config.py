"""Configs: JSON round trip and a clear error for every invalid field."""

import pytest

from disaster_tf import config as config_lib


def test_json_round_trip(tmp_path):
  cfg = config_lib.Config(model=config_lib.ModelConfig(rnn="gru", rnn_units=7),
                          train=config_lib.TrainConfig(loss_weights=(("offer", 2.0),)))
  config_lib.save(cfg, str(tmp_path))
  assert config_lib.load(str(tmp_path)) == cfg


@pytest.mark.parametrize("section, kwargs, message", [
    ("model", dict(max_tokens=0), "max_tokens=0: expected a positive, finite number"),
    ("model", dict(max_tokens=2), "need at least 3"),
    ("model", dict(lexicon_variants=True), "lexicon_variants=True without lexicon: .* add --lexicon"),
    ("model", dict(rnn="transformer"), "rnn='transformer': expected one of lstm, gru"),
    ("model", dict(architecture="bert"), "architecture='bert': expected one of cnn_rnn, bigru, multi_cnn, linear"),
    ("model", dict(ngrams=0), "ngrams=0: expected a positive, finite number"),
    ("model", dict(min_df=0), "min_df=0: expected a positive, finite number"),
    ("model", dict(linear_l2=-1.0), r"linear_l2=-1.0: expected a finite penalty >= 0"),
    ("model", dict(char_ngrams=(5, 2)), r"char_ngrams=\(5, 2\): expected two widths lo,hi with 1 <= lo <= hi <= 10"),
    ("model", dict(char_ngrams=(2,)), r"char_ngrams=\(2,\): expected two widths"),
    ("train", dict(lr_schedule="step"), "lr_schedule='step': expected one of constant, cosine"),
    ("train", dict(learning_rate=float("inf")), "learning_rate=inf: expected a positive, finite number"),
    ("train", dict(learning_rate=float("nan")), "learning_rate=nan: expected a positive, finite number"),
    ("train", dict(class_weight_cap=float("inf")), "class_weight_cap=inf: expected a positive, finite number"),
    ("model", dict(dropout=float("nan")), r"dropout=nan: expected a rate in \[0, 1\)"),
    ("train", dict(tune_fraction=0.9), r"tune_fraction=0.9: expected a fraction in \[0, 1 - validation_fraction\)"),
    ("train", dict(min_tune_positives=0), "min_tune_positives=0: expected at least 1"),
    ("model", dict(dropout=1.0), r"dropout=1.0: expected a rate in \[0, 1\)"),
    ("train", dict(validation_fraction=1.5), r"validation_fraction=1.5: expected a fraction"),
    ("train", dict(patience=-1), "patience=-1"),
    ("model", dict(architecture="encoder"), r"--model=encoder with pretrained_encoder='': the encoder model needs"),
    ("model", dict(pretrained_encoder="bert"), r"--model=ensemble with pretrained_encoder='bert'"),
    ("model", dict(architecture="encoder", pretrained_encoder="b", lexicon=True), r"no --pretrained_vectors or "
     "--lexicon"),
    ("train", dict(linear_epochs=-1), "linear_epochs=-1: expected 0 .* or a number of epochs"),
    ("train", dict(original_copies=0), "original_copies=0: expected 1, or more with text_fields=message,original"),
    ("train", dict(original_copies=2), "original_copies=2: expected 1, or more with text_fields=message,original"),
    ("train", dict(pairs=True), "pairs=True with text_fields=message: .* add --text_fields=message,original"),
    ("train", dict(text_fields=("message", "original"), pairs=True, consistency=-1.0),
     "consistency=-1.0: expected a finite weight >= 0"),
    ("train", dict(text_fields=("message", "original"), consistency=0.5), "consistency=0.5 without pairs: .* add "
     "--pairs"),
    ("train", dict(refit=True, tune_fraction=0.0), "refit=True with tune_fraction=0: .* set --tune_fraction above 0"),
    ("train", dict(optimizer="lion"), "optimizer='lion'"),
    ("train", dict(threshold_objective="accuracy"),
     "threshold_objective='accuracy': expected one of positive_f1, macro_f1"),
    ("train", dict(loss_weights=(("blaze", 1.0),)), "loss_weights: unknown category 'blaze'"),
    ("train", dict(loss_weights=(("fire", -1.0),)), r"loss_weights: fire=-1.0: expected a finite weight >= 0"),
    ("train", dict(loss_weights=(("fire", float("nan")),)), r"loss_weights: fire=nan: expected a finite weight >= 0"),
])
def test_invalid_fields(section, kwargs, message):
  cls = config_lib.ModelConfig if section == "model" else config_lib.TrainConfig
  with pytest.raises(ValueError, match=message):
    cls(**kwargs)


def test_xla_is_refused_for_models_with_sparse_tf_idf_inputs():
  with pytest.raises(ValueError, match="jit_compile=True with --model=ensemble: XLA cannot compile the sparse ops"):
    config_lib.Config(train=config_lib.TrainConfig(jit_compile=True))
  config_lib.Config(model=config_lib.ModelConfig(architecture="multi_cnn"),
                    train=config_lib.TrainConfig(jit_compile=True))


def test_a_lexicon_is_refused_without_originals_to_learn_it_from():
  with pytest.raises(ValueError, match="lexicon=True with text_fields=message: .* add --text_fields=message,original"):
    config_lib.Config(model=config_lib.ModelConfig(lexicon=True))
  config_lib.Config(model=config_lib.ModelConfig(lexicon=True),
                    train=config_lib.TrainConfig(text_fields=("message", "original")))


def test_load_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="config.json: no such file"):
    config_lib.load(str(tmp_path))
  (tmp_path / "config.json").write_text('{"model": {"embedding_dim": 12')  # cut short by hand
  with pytest.raises(ValueError, match=r"config.json: not a valid disaster_tf config: Expecting"):
    config_lib.load(str(tmp_path))
  for text, error in (('[1, 2]', r"expected a JSON object with `model` and `train`, found a JSON list"),
                      ('{"model": [1]}', r"model: expected a JSON object of fields, found a JSON list")):
    (tmp_path / "config.json").write_text(text)  # valid JSON, but not a config
    with pytest.raises(ValueError, match=rf"config.json: not a valid disaster_tf config: {error}"):
      config_lib.load(str(tmp_path))
  (tmp_path / "config.json").write_text('{"model": {"layers": 3}}')
  with pytest.raises(ValueError, match=r"not a valid disaster_tf config: model: unknown field\(s\) layers"):
    config_lib.load(str(tmp_path))


def test_write_text_atomic_names_the_file_and_leaves_no_temporary(tmp_path):
  path = tmp_path / "config.json"
  config_lib.write_text_atomic(str(path), "old\n")
  (tmp_path / f"config.json.tmp-{__import__('os').getpid()}").mkdir()  # the temporary's name is taken: open fails
  with pytest.raises(OSError, match=r"config.json: could not write it \(.*\); the previous version, if any, is intact"):
    config_lib.write_text_atomic(str(path), "new\n")
  assert path.read_text() == "old\n"
  with pytest.raises(OSError, match="nowhere/metrics.json: could not write it"):
    config_lib.write_text_atomic(str(tmp_path / "nowhere" / "metrics.json"), "x")
  assert not (tmp_path / "nowhere").exists()


def test_refit_config_trains_on_train_and_tune_and_keeps_the_last_epoch():
  config = config_lib.Config(train=config_lib.TrainConfig(refit=True, patience=3, epochs=10))
  refit = config_lib.refit_config(config)
  assert (refit.train.tune_fraction, refit.train.select_metric, refit.train.patience, refit.train.refit) == (
      0.0, "last", 0, False)
  # The schedule's length and everything else stay: the refit repeats the chosen run's trajectory.
  assert refit.model == config.model and refit.train.epochs == 10
  assert refit.train.validation_fraction == config.train.validation_fraction


def test_linear_epochs_need_an_ensemble_and_its_member_runs_as_the_linear_flagfile():
  with pytest.raises(ValueError, match="linear_epochs=30 with --model=multi_cnn: only an ensemble has a linear member"):
    config_lib.Config(model=config_lib.ModelConfig(architecture="multi_cnn"),
                      train=config_lib.TrainConfig(linear_epochs=30))
  config = config_lib.Config(model=config_lib.ModelConfig(pretrained_vectors="v.txt", embedding_dim=50),
                             train=config_lib.TrainConfig(linear_epochs=30, refit=True, patience=3))
  member = config_lib.linear_member_config(config)
  assert member.model.architecture == "linear" and not member.model.pretrained_vectors
  assert (member.train.epochs, member.train.linear_epochs, member.train.patience, member.train.select_metric,
          member.train.class_weight, member.train.refit) == (30, 0, 0, "last", "balanced", False)
  assert member.model.char_ngrams == config.model.char_ngrams and member.train.seed == config.train.seed


def test_a_routed_run_needs_originals_and_the_gate_and_no_refit():
  for train, error in ((dict(route_english=True), "route_english=True needs text_fields=message,original and "
                                                  "language_gate=True"),
                       (dict(route_english=True, text_fields=("message", "original"), language_gate=False),
                        "route_english=True needs"),
                       (dict(route_english=True, text_fields=("message", "original"), refit=True),
                        "route_english=True with refit=True")):
    with pytest.raises(ValueError, match=error):
      config_lib.Config(train=config_lib.TrainConfig(**train))


def test_an_encoder_member_belongs_to_an_ensemble_without_routing_or_refit():
  for model, train, error in (("multi_cnn", {}, "with --model=multi_cnn: the encoder is the third member"),
                              ("ensemble", dict(refit=True), "with --model=ensemble --refit: the encoder"),
                              ("ensemble", dict(route_english=True, text_fields=("message", "original")),
                               "with --model=ensemble --route_english: the encoder")):
    with pytest.raises(ValueError, match=error):
      config_lib.Config(model=config_lib.ModelConfig(architecture=model),
                        train=config_lib.TrainConfig(encoder_member="bert", **train))
  with pytest.raises(ValueError, match="encoder_epochs=0: expected a positive"):
    config_lib.TrainConfig(encoder_member="bert", encoder_epochs=0)
  member = config_lib.linear_member_config(config_lib.Config(train=config_lib.TrainConfig(
      encoder_member="bert", linear_epochs=3)))
  assert member.train.encoder_member == ""  # the linear member is one model
