"""Scoring unlabelled messages: urgency, scorers (in process and over TF Serving), CSV files, the CLI."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import labels
from disaster_tf.serve import predict
from tests import fixtures
from tests import tf_serving_stub

ROOT = fixtures.ROOT


def test_urgency_order_puts_named_categories_first_and_refuses_unknown_or_repeated_ones():
  assert predict.urgency_order() == predict.URGENCY
  assert predict.urgency_order(["water", "fire"])[:3] == ("water", "fire", "search_and_rescue")
  assert sorted(predict.urgency_order(["water"])) == sorted(labels.CATEGORIES)
  with pytest.raises(ValueError, match="urgency: unknown category blaze; expected names from search_and_rescue"):
    predict.urgency_order(["blaze"])
  with pytest.raises(ValueError, match="urgency: a category is named twice in water, water"):
    predict.urgency_order(["water", "water"])


def test_priority_is_the_rank_of_the_most_urgent_predicted_category():
  water, trapped, nothing = fixtures.keyword_scorer(["need water", "trapped and need water", "hello"])
  assert predict.priority(trapped) == 1  # search_and_rescue leads the default order
  assert predict.priority(water) == predict.URGENCY.index("water") + 1
  assert predict.priority(water, predict.urgency_order(["water"])) == 1
  nothing["predicted"] = []
  assert predict.priority(nothing) == len(labels.CATEGORIES) + 1


def test_an_english_only_model_flags_what_its_gate_calls_another_language_and_puts_it_first():
  creole, english = fixtures.keyword_scorer(["Nou bezwen dlo ak manje", "hello there"])
  flagged = predict.ranked(creole, predict.URGENCY, "Nou bezwen dlo ak manje", english_only=True)
  assert flagged["not_english"] and flagged["priority"] == 1 and flagged["related"] == "unsure"
  assert predict.scored_values(flagged)[3] == f"other ({predict.NOT_ENGLISH})"
  # A model that reads messages as sent answers it as it is; an English message is never flagged.
  assert not predict.ranked(creole, predict.URGENCY, "", english_only=False)["not_english"]
  plain = predict.ranked(english, predict.URGENCY, "hello there", english_only=True)
  assert not plain["not_english"] and plain["priority"] > 1 and predict.scored_values(plain)[3] == "english"
  no_gate = dict(creole)
  del no_gate["language"]
  assert predict.ranked(no_gate, predict.URGENCY, "", english_only=True)["language"] == ""  # an older export


def test_the_exports_own_reads_language_decides_the_flag_where_it_gives_it():
  creole, = fixtures.keyword_scorer(["Nou bezwen dlo ak manje"])
  # Over TF Serving the page knows nothing of the model (english_only False): the export's word flags it.
  unread = dict(creole, reads_language=False)
  assert predict.ranked(unread, predict.URGENCY, "", english_only=False)["not_english"]
  read = dict(creole, reads_language=True)  # a routed export: it reads Creole
  assert not predict.ranked(read, predict.URGENCY, "", english_only=False)["not_english"]
  assert predict.ranked(read, predict.URGENCY, "", english_only=True)["not_english"]  # either one flags it


def test_the_local_scorer_gives_the_exports_own_answers(exported):
  _, path = exported
  texts = ["We need water and food", "", "fire in the market"]
  results = predict.local_scorer(path)(texts)
  out = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(texts))
  np.testing.assert_allclose([[r["scores"][c] for c in labels.CATEGORIES] for r in results], out["scores"].numpy(),
                             rtol=1e-6)
  assert results[1]["predicted"] == [] and predict.local_scorer(path)([]) == []
  assert predict.model_summary(path).categories == labels.CATEGORIES


def test_the_serving_scorer_reads_tf_serving_and_refuses_another_url_shape(exported):
  _, path = exported
  with pytest.raises(ValueError, match="expected http://HOST:PORT/v1/models/NAME"):
    predict.serving_scorer("http://localhost:8501/disaster")
  with tf_serving_stub.Stub(path, "disaster") as stub:
    scorer = predict.serving_scorer(f"http://127.0.0.1:{stub.rest_port}/v1/models/disaster")
    (remote,), (local,) = scorer(["we need water"]), predict.local_scorer(path)(["we need water"])
    assert remote["predicted"] == local["predicted"] and remote["related"] == local["related"]
    np.testing.assert_allclose([remote["scores"][c] for c in labels.CATEGORIES],
                               [local["scores"][c] for c in labels.CATEGORIES], rtol=1e-5)
    assert scorer([]) == []
    # The explain signature over REST: what the export in this process explains.
    explained = predict.serving_scorer(f"http://127.0.0.1:{stub.rest_port}/v1/models/disaster", explain=True)
    (remote,), (local,) = explained(["we need water"]), predict.load_export(path).explainer(["we need water"])
    assert remote["explanation"] == local["explanation"] and remote["explanation"]["water"][0][0] == "water"


def test_predict_cli_scores_a_file_and_refuses_two_models(exported, tmp_path):
  _, path = exported
  source = fixtures.write_csv(tmp_path / "in.csv", "id,message\n1,We need water\n2,Fire here\n")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  cmd = [sys.executable, os.path.join(ROOT, "predict.py"), f"--input={source}", f"--output={tmp_path / 'out.csv'}"]
  result = subprocess.run(cmd + [f"--export_dir={path}", "--urgency=fire"], capture_output=True, text=True, env=env,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "2 rows read, 2 scored, 0 not readable" in result.stdout
  assert [r["id"] for r in fixtures.read_csv(tmp_path / "out.csv")] == ["1", "2"]
  assert f"scoring with version 1 ({path})" in result.stdout  # which export answered, always said
  assert "explanation" not in fixtures.read_csv(tmp_path / "out.csv")[0]
  result = subprocess.run(cmd + [f"--export_dir={path}", "--explain"], capture_output=True, text=True, env=env,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  water, _ = fixtures.read_csv(tmp_path / "out.csv")
  assert water["explanation"].startswith("water: water (+") and "water" in water["predicted"]
  result = subprocess.run(cmd + [f"--export_dir={path}", f"--serving_url=http://127.0.0.1:1/v1/models/x"],
                          capture_output=True, text=True, env=env, timeout=300)
  assert result.returncode != 0 and "give one of --export_dir" in result.stderr
  result = subprocess.run(cmd + [f"--export_dir={path}", "--urgency=blaze"], capture_output=True, text=True,
                          env=env, timeout=300)
  assert result.returncode == 1 and "urgency: unknown category blaze" in result.stderr
