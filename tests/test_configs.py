"""The shipped flagfiles: the article's baseline must not drift with the defaults."""

import dataclasses
import os

import pytest

from disaster_tf import config as config_lib
from disaster_tf import flagfiles
from disaster_tf.cli import train
from tests import fixtures

ROOT = fixtures.ROOT
# Flags that are not model or optimisation choices: where data and outputs go, how the
# split is drawn (the same for every run, so that runs compare), logging and resources.
NOT_CHOICES = {"data", "decisions", "validation_fraction", "tune_fraction", "min_tune_positives", "split_seed",
               "seed", "select_metric", "strategy", "shuffle_buffer", "log_every", "class_weight_cap"}
# The TF-IDF inputs' fields: the article's cnn_rnn reads none of them.
TFIDF_FIELDS = {"ngrams", "min_df", "max_ngrams", "char_ngrams", "linear_l2", "linear_lr_multiplier"}
# configs/disaster_response.flags is one of these two, flag for flag (bench/quality.py, section "languages").
DEFAULT_IS = "english"
SHIPPED = ("configs/seed_article.flags", "configs/disaster_response.flags", "configs/english.flags",
           "configs/linear.flags", "configs/multi_cnn.flags", "configs/multilingual.flags", "configs/pretrained.flags",
           "configs/routed.flags", "configs/encoder.flags")


def flag_names(path):
  with open(os.path.join(ROOT, path)) as f:
    return {line.strip()[2:].split("=")[0] for line in f if line.strip().startswith("--")}


def test_the_article_flagfile_pins_every_choice():
  fields = {f.name for cls in (config_lib.ModelConfig, config_lib.TrainConfig) for f in dataclasses.fields(cls)}
  fields = {"model" if f == "architecture" else f for f in fields}
  missing = fields - NOT_CHOICES - TFIDF_FIELDS - flag_names("configs/seed_article.flags")
  assert not missing, f"configs/seed_article.flags leaves these to the defaults: {sorted(missing)}"


def test_flagfiles_name_only_real_flags():
  fields = {f.name for cls in (config_lib.ModelConfig, config_lib.TrainConfig) for f in dataclasses.fields(cls)}
  known = ({"model" if f == "architecture" else f for f in fields} | {"verbose"})  # never --model_dir: per run
  for path in SHIPPED:
    assert flag_names(path) <= known, (path, flag_names(path) - known)


@pytest.mark.parametrize("path", SHIPPED)
def test_flagfiles_parse_into_the_config_train_py_runs(path):
  config = train.config_from_flagfile(os.path.join(ROOT, path), "--epochs=2", "--loss_weights=offer=2")
  assert config.train.epochs == 2 and config.train.loss_weights == (("offer", 2.0),)  # later flags win
  expected = {"seed_article": "cnn_rnn", "disaster_response": "ensemble", "english": "ensemble", "linear": "linear",
              "multi_cnn": "multi_cnn", "multilingual": "ensemble", "pretrained": "ensemble", "routed": "ensemble",
              "encoder": "encoder"}
  assert config.model.architecture == expected[os.path.basename(path)[:-len(".flags")]]  # --model
  assert config_lib.Config.from_json(config.to_json()) == config
  reads_both = ("multilingual" in path or "routed" in path
                or ("disaster_response" in path and DEFAULT_IS == "multilingual"))
  assert config.train.text_fields == (("message", "original") if reads_both else ("message",))
  assert config.model.lexicon == reads_both
  assert config.train.route_english == ("routed" in path)


def test_the_routed_model_is_the_multilingual_one_routing_flag_for_flag():
  routed, multilingual = (train.config_from_flagfile(os.path.join(ROOT, f"configs/{name}.flags"))
                          for name in ("routed", "multilingual"))
  assert routed == dataclasses.replace(multilingual, train=dataclasses.replace(multilingual.train,
                                                                               route_english=True))
  english = config_lib.english_member_config(routed)  # what it trains first, in <model_dir>/english
  assert english.train.text_fields == ("message",) and not english.model.lexicon and not english.train.route_english


def test_the_pretrained_model_is_the_default_with_the_encoder_alones_fine_tune_as_its_third_member():
  from disaster_tf.train import members  # pylint: disable=import-outside-toplevel
  pretrained, default, alone = (train.config_from_flagfile(os.path.join(ROOT, f"configs/{name}.flags"))
                                for name in ("pretrained", "disaster_response", "encoder"))
  assert pretrained == dataclasses.replace(default, train=dataclasses.replace(
      default.train, encoder_member="vectors/all-MiniLM-L6-v2", encoder_epochs=2))
  member = members.encoder_config(pretrained)  # what it trains in <model_dir>/encoder
  assert member.model == alone.model  # the encoder.flags run's model: BENCHMARKS' "encoder" rows
  assert member.train == dataclasses.replace(alone.train, precision="auto", language_gate=False)


def test_the_default_is_the_multilingual_or_the_english_model_flag_for_flag():
  default, chosen = (train.config_from_flagfile(os.path.join(ROOT, f"configs/{name}.flags"))
                     for name in ("disaster_response", DEFAULT_IS))
  assert default == chosen


def test_shipped_flagfiles_are_found_by_name_and_the_top_level_configs_link_to_them():
  assert flagfiles.names() == ["disaster_response", "encoder", "english", "linear", "multi_cnn", "multilingual",
                               "pretrained", "routed", "seed_article"]
  for name in flagfiles.names():
    assert os.path.samefile(flagfiles.path(name), os.path.join(ROOT, "configs", f"{name}.flags"))
    assert flagfiles.path(f"{name}.flags") == flagfiles.path(name)
  assert train.config_from_flagfile("linear") == train.config_from_flagfile(os.path.join(ROOT, "configs/linear.flags"))
  with pytest.raises(ValueError, match="'bert': no such shipped flagfile; expected a file or one of "
                                       "disaster_response, encoder, english, linear, multi_cnn, multilingual, "
                                       "pretrained, routed, seed_article"):
    flagfiles.path("bert")
  # Only a bare name is looked up; a path (or a name that is a file here) is absl's to read.
  assert flagfiles.expand(["x", "--flagfile=linear", "--flagfile=a/b.flags", "--model=linear"]) == [
      "x", f"--flagfile={flagfiles.path('linear')}", "--flagfile=a/b.flags", "--model=linear"]
