"""The export: its contract, fresh-process loading, bad input, warmup, atomicity, ops."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf.model import features
from disaster_tf.model import language
from disaster_tf.model import networks
from disaster_tf.serve import explain as explain_lib
from disaster_tf.serve import module as module_lib
from disaster_tf.serve import predict
from disaster_tf.serve import savedmodel
from disaster_tf.serve import warmup
from disaster_tf.train import checkpoint as ckpt_lib
from tests import fixtures

ROOT = fixtures.ROOT
ALLOWED_OPS = os.path.join(ROOT, "serving", "allowed_ops.txt")
ALLOWED_TEXT_OPS = os.path.join(ROOT, "serving", "allowed_text_ops.txt")  # TF Text's, for --model=encoder only
MESSAGES = ["We need water and food", "Fire in the market", "", "the of and", "日本語 🙂 नमस्ते"]


def in_memory_scores(model_dir, texts):
  loaded = ckpt_lib.load_model(model_dir)
  inputs = loaded.featurizer(tf.constant(texts))
  scores, _ = networks.probabilities(loaded.model(inputs), features.has_tokens(inputs))
  return scores.numpy()


def test_export_layout_and_next_version(exported):
  model_dir, path = exported
  base = os.path.dirname(path)
  assert os.path.basename(path) == "1" and sorted(os.listdir(base)) == ["1"]  # no temporary left behind
  for name in ("saved_model.pb", "variables", "assets.extra/tf_serving_warmup_requests",
               "assets.extra/disaster_tf.json"):
    assert os.path.exists(os.path.join(path, name)), name
  assert savedmodel.next_version(base) == 2
  assert savedmodel.version_dir(base) == path and savedmodel.version_dir(path) == path
  meta = savedmodel.read_metadata(path)
  assert meta.categories == labels.CATEGORIES
  tuned = ckpt_lib.read_thresholds(model_dir)
  assert meta.thresholds == pytest.approx(tuned.tolist()) and (tuned[1:] != 0.5).any()


def test_fresh_process_with_only_tensorflow_gives_the_in_memory_scores(exported, tmp_path):
  model_dir, path = exported
  script = (
      "import json, sys\n"
      "import tensorflow as tf\n"
      "import tensorflow_text  # what a user loading exports with TF Text ops imports\n"
      "assert not any(m.startswith('disaster_tf') for m in sys.modules)\n"
      f"fn = tf.saved_model.load({path!r}).signatures['serving_default']\n"
      f"out = fn(text=tf.constant({MESSAGES!r}))\n"
      "print(json.dumps({k: v.numpy().tolist() for k, v in out.items() if k not in ('classes', 'language')}))\n")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr[-2000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  np.testing.assert_allclose(out["scores"], in_memory_scores(model_dir, MESSAGES), rtol=1e-5, atol=1e-6)
  assert np.array(out["labels"]).shape == (5, 36) and np.array(out["related_probabilities"]).shape == (5, 3)


def test_session_loader_like_tf_serving_gives_the_same_scores(exported):
  """TF Serving loads with a session and the saver's restore op, not Python objects.

  Keras 3 variables inside a tf.Module used to restore into copies the graph
  never reads there (keras-team/keras#20095); this is the check for that.
  """
  model_dir, path = exported
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    meta_graph = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
    signature = meta_graph.signature_def["serving_default"]
    scores = sess.run(signature.outputs["scores"].name, {signature.inputs["text"].name: MESSAGES})
  np.testing.assert_allclose(scores, in_memory_scores(model_dir, MESSAGES), rtol=1e-5, atol=1e-6)


def test_a_single_string_instead_of_a_list_is_an_error_naming_text_the_way_tf_serving_feeds_it(exported):
  _, path = exported
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    signature = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path).signature_def["serving_default"]
    text, out = (sess.graph.get_tensor_by_name(signature.inputs["text"].name),
                 sess.graph.get_tensor_by_name(signature.outputs["scores"].name))
    def scores(value):
      # TF Serving's C++ session takes the request's tensor whatever the signature's [batch] says; Python's
      # Session.run would check the shape itself, so the C API's run is called as TF Serving calls it.
      return sess._call_tf_sessionrun(  # pylint: disable=protected-access
          None, {text._as_tf_output(): value}, [out._as_tf_output()], [], None)[0]  # pylint: disable=protected-access
    assert scores(np.array(["we need water"], object)).shape == (1, 36)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"text: expected a list of messages \(\[batch\] "
                                                             r"strings\), found a tensor of rank.*0"):
      scores(np.array("we need water", object))


def test_a_broken_export_is_a_sentence_and_a_zero_padded_version_is_found(exported, tmp_path):
  _, path = exported
  shutil.copytree(path, tmp_path / "models" / "0003")  # TF Serving reads it as version 3
  assert savedmodel.version_dir(str(tmp_path / "models")) == str(tmp_path / "models" / "0003")
  assert savedmodel.next_version(str(tmp_path / "models")) == 4
  broken = tmp_path / "models" / "4"
  shutil.copytree(path, broken)
  data = next((broken / "variables").glob("variables.data-*"))
  data.write_bytes(data.read_bytes()[:100])  # copied while it was written, or cut short by a full disk
  with pytest.raises(ValueError, match=r"4: the export cannot be loaded \(.*\); it may have been copied while it "
                                       r"was written or cut short by a full disk: export the model dir again"):
    savedmodel.load_signatures(str(broken))
  (broken / "saved_model.pb").write_bytes(b"not a protocol buffer")
  with pytest.raises(ValueError, match="4: the export cannot be loaded"):
    predict.load_export(str(broken))


def test_saved_model_cli_shows_the_contract(exported):
  _, path = exported
  result = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--all",
                           "--dir", path], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert result.returncode == 0, result.stderr[-2000:]
  show = result.stdout
  predict = show[show.index("signature_def['serving_default']"):]
  classify = show[show.index("signature_def['classify']"):show.index("signature_def['explain']")]
  explain = show[show.index("signature_def['explain']"):show.index("signature_def['serving_default']")]
  assert "inputs['text'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in predict
  for name, dtype, shape in (("scores", "DT_FLOAT", "(-1, 36)"), ("labels", "DT_INT32", "(-1, 36)"),
                             ("classes", "DT_STRING", "(-1, 36)"), ("related_probabilities", "DT_FLOAT", "(-1, 3)"),
                             ("language", "DT_STRING", "(-1)"), ("language_score", "DT_FLOAT", "(-1)"),
                             ("reads_language", "DT_BOOL", "(-1)")):
    assert f"outputs['{name}'] tensor_info:\n        dtype: {dtype}\n        shape: {shape}" in predict, name
  assert "Method name is: tensorflow/serving/predict" in predict
  assert "inputs['inputs'] tensor_info:\n        dtype: DT_STRING" in classify
  assert "outputs['classes']" in classify and "outputs['scores']" in classify
  assert "Method name is: tensorflow/serving/classify" in classify
  assert "inputs['text'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in explain
  for name, dtype, shape in (("scores", "DT_FLOAT", "(-1, 36)"), ("words", "DT_STRING", "(-1, 64)"),
                             ("contributions", "DT_FLOAT", "(-1, 64, 36)"), ("top_words", "DT_STRING", "(-1, 36, 3)"),
                             ("top_contributions", "DT_FLOAT", "(-1, 36, 3)")):
    assert f"outputs['{name}'] tensor_info:\n        dtype: {dtype}\n        shape: {shape}" in explain, name
  assert "Method name is: tensorflow/serving/predict" in explain


def test_saved_model_cli_run_prints_the_four_outputs(exported):
  _, path = exported
  result = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "run", "--dir", path,
                           "--tag_set", "serve", "--signature_def", "serving_default",
                           "--input_exprs", 'text=["we need water"]'], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert result.returncode == 0, result.stderr[-2000:]
  for name in ("scores", "labels", "classes", "related_probabilities"):
    assert f"Result for output key {name}:" in result.stdout


def test_bad_serving_input_gives_outputs_never_a_crash(exported):
  _, path = exported
  fn = tf.saved_model.load(path).signatures["serving_default"]
  weird = [b"", b"   \t\n", "🙂🙂🔥".encode(), "مرحبا Здравствуйте 你好".encode(), b"help " * 20000,
           b"\xff\xfe\xfd invalid utf-8 \xc3"]
  out = fn(text=tf.constant(weird, tf.string))
  assert out["scores"].shape == (6, 36) and np.isfinite(out["scores"].numpy()).all()
  assert out["labels"].shape == (6, 36) and out["classes"].shape == (6, 36)
  assert out["classes"].numpy()[4, 10].decode() == labels.CATEGORIES[10]
  empty = fn(text=tf.constant([], tf.string))
  assert {k: tuple(v.shape) for k, v in empty.items()} == {
      "scores": (0, 36), "labels": (0, 36), "classes": (0, 36), "related_probabilities": (0, 3),
      "language": (0,), "language_score": (0,), "reads_language": (0,)}  # the data has originals: a gate
  languages = out["language"].numpy()
  assert out["language_score"].shape == (6,) and set(languages) <= {b"english", b"other"}


def test_every_export_says_which_language_a_message_is_in(exported):
  model_dir, path = exported
  out = tf.saved_model.load(path).signatures["serving_default"](
      text=tf.constant(["Nou bezwen dlo ak manje tanpri", "We need water and food please", "", "🙂"]))
  assert [s.decode() for s in out["language"].numpy()] == ["other", "english", "english", "english"]
  score = out["language_score"].numpy()
  assert score[0] >= 0.5 > score[1] and score[2] == score[3] == 0  # nothing to read: in no language
  assert out["reads_language"].numpy().all()  # this model reads both (tests/serve/test_module.py: one that doesn't)
  gate = savedmodel.read_metadata(path).language_gate
  assert gate["threshold"] == 0.5 and gate["other_recall"] >= 0.9
  with open(os.path.join(path, "assets.extra", savedmodel.MODEL_CARD_FILE), encoding="utf-8") as f:
    card = f.read()
  assert "## Which language a message is in" in card and "originals not English" in card
  assert language.load(model_dir) is not None


def test_labels_use_the_tuned_thresholds_and_argmax_for_related(exported):
  model_dir, path = exported
  out = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(MESSAGES))
  related = out["related_probabilities"].numpy()
  np.testing.assert_allclose(out["scores"].numpy()[:, 0], related[:, 1], rtol=1e-6)
  thresholds = ckpt_lib.read_thresholds(model_dir)
  binary = (out["scores"].numpy()[:, 1:] >= thresholds[1:]).astype(int)
  np.testing.assert_array_equal(out["labels"].numpy()[:, 1:], binary)
  # related is the argmax, but never "no" beside a category (the data's rule, model.decide).
  expected = np.where(binary.any(axis=1), np.maximum(related.argmax(axis=1), 1), related.argmax(axis=1))
  np.testing.assert_array_equal(out["labels"].numpy()[:, 0], expected)
  assert (binary.any(axis=1) & (related.argmax(axis=1) == 0)).any()  # the rule is exercised here


def test_classify_signature_reads_tf_examples(exported):
  _, path = exported
  loaded = tf.saved_model.load(path)
  examples = [tf.train.Example(features=tf.train.Features(feature={
      "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[m.encode()]))})).SerializeToString()
              for m in MESSAGES[:2]]
  out = loaded.signatures["classify"](inputs=tf.constant(examples))
  direct = loaded.signatures["serving_default"](text=tf.constant(MESSAGES[:2]))
  np.testing.assert_allclose(out["scores"].numpy(), direct["scores"].numpy(), rtol=1e-6)
  assert out["classes"].shape == (2, 36)


def test_classify_refuses_an_example_without_text_naming_the_feature(exported):
  _, path = exported
  classify = tf.saved_model.load(path).signatures["classify"]
  no_text = tf.train.Example(features=tf.train.Features(feature={
      "message": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"we need water"]))})).SerializeToString()
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"Feature: text \(data type: string\) is required"):
    classify(inputs=tf.constant([no_text]))


def test_a_message_with_no_token_gets_nothing_whatever_the_thresholds(exported, tmp_path):
  model_dir, _ = exported
  # Thresholds of 0 everywhere: any score would be a positive, if content-free messages were scored.
  path = savedmodel.export(model_dir, str(tmp_path / "m"), thresholds=np.zeros(36, np.float32), warmup=False)
  predict = tf.saved_model.load(path).signatures["serving_default"]
  blank = ["", "   \t\n", "?!... ---", "the of and", "\x00\x01\x7f", "🙂🔥"]
  out = predict(text=tf.constant(blank + ["We need water"]))
  assert (out["labels"].numpy()[:-1] == 0).all() and (out["scores"].numpy()[:-1] == 0).all()
  np.testing.assert_array_equal(out["related_probabilities"].numpy()[:-1], [[1, 0, 0]] * len(blank))
  assert out["labels"].numpy()[-1, 1:].all()  # a real message at threshold 0: everything applies


def test_control_characters_separate_words_instead_of_cutting_the_message(exported):
  _, path = exported
  predict = tf.saved_model.load(path).signatures["serving_default"]
  out = predict(text=tf.constant(["please\x00 send water", "please\x1f send\x07water", "please send water"]))
  np.testing.assert_allclose(out["scores"].numpy()[:2], out["scores"].numpy()[[2, 2]], rtol=1e-6)


def test_warmup_requests_cover_every_batch_size_for_predict_explain_and_classify(exported):
  from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=import-outside-toplevel
  _, path = exported
  signatures = tf.saved_model.load(path).signatures
  seen = []
  for record in tf.data.TFRecordDataset(os.path.join(path, "assets.extra", savedmodel.WARMUP_FILE)):
    log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
    if log.HasField("predict_log"):
      request = log.predict_log.request
      out = signatures[request.model_spec.signature_name](text=tf.constant(tf.make_ndarray(request.inputs["text"])))
    else:
      request = log.classify_log.request
      examples = [e.SerializeToString() for e in request.input.example_list.examples]
      out = signatures[request.model_spec.signature_name](inputs=tf.constant(examples))
    seen.append((request.model_spec.signature_name, out["scores"].shape[0]))
  assert seen == [(key, size) for size in warmup.BATCH_SIZES
                  for key in (savedmodel.PREDICT_KEY, savedmodel.EXPLAIN_KEY, savedmodel.CLASSIFY_KEY)]


def graph_ops(path):
  """Every op of a SavedModel's graph and function library (calls to its own functions excluded)."""
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(path, "saved_model.pb"), "rb") as f:
    saved_model.ParseFromString(f.read())
  ops = set()
  for meta_graph in saved_model.meta_graphs:
    ops.update(node.op for node in meta_graph.graph_def.node)
    for function in meta_graph.graph_def.library.function:
      ops.update(node.op for node in function.node_def)
  return ops - {f.signature.name for mg in saved_model.meta_graphs for f in mg.graph_def.library.function}


def read_ops(path):
  with open(path) as f:
    return {line.split("#")[0].strip() for line in f} - {""}


def assert_only_allowed_ops(path, text_ops=False):
  """Every op of the export is a core op of serving/allowed_ops.txt (and, for an encoder, a TF Text op of
  serving/allowed_text_ops.txt, which every TF Serving since 2.2 links)."""
  allowed = read_ops(ALLOWED_OPS)
  # Every allowed op is a core TensorFlow op (no custom op library needed to serve).
  assert all(hasattr(tf.raw_ops, op) for op in allowed), [op for op in allowed if not hasattr(tf.raw_ops, op)]
  if text_ops:
    allowed |= read_ops(ALLOWED_TEXT_OPS)
  ops = graph_ops(path)
  assert ops <= allowed, f"ops outside serving/allowed_ops.txt: {sorted(ops - allowed)}"


def test_serving_graph_uses_only_allowed_ops(exported):
  assert_only_allowed_ops(exported[1])


@pytest.mark.parametrize("architecture", ["cnn_rnn", "bigru", "multi_cnn", "wide_deep"])  # ensemble: `exported`
def test_every_backbone_exports_with_allowed_ops_only(architecture, tmp_path):
  # The graph does not depend on the weights: a model dir with random ones (test_checkpoint's) serves as well as a
  # trained one, without the training.
  from tests.train.test_checkpoint import write_model_dir  # pylint: disable=import-outside-toplevel
  write_model_dir(tmp_path / "model", fixtures.tiny_config(str(tmp_path / "data"), architecture=architecture))
  path = savedmodel.export(str(tmp_path / "model"), str(tmp_path / "models"), warmup=False)
  out = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(MESSAGES))
  np.testing.assert_allclose(out["scores"].numpy(), in_memory_scores(str(tmp_path / "model"), MESSAGES),
                             rtol=1e-5, atol=1e-6)
  assert_only_allowed_ops(path)


def test_an_existing_version_is_never_overwritten(exported, tmp_path):
  model_dir, path = exported
  base = os.path.dirname(path)
  with pytest.raises(FileExistsError, match="versions are never overwritten"):
    savedmodel.export(model_dir, base, version=1)
  assert sorted(os.listdir(base)) == ["1"]


def test_what_a_killed_export_left_is_removed_by_the_next(exported, tmp_path):
  model_dir, _ = exported
  base = tmp_path / "models"
  (base / ".tmp-1-999999999").mkdir(parents=True)  # a SIGKILLed export's (no such process now)
  (base / f".tmp-7-{os.getpid()}").mkdir()  # a live export's: left alone
  savedmodel.export(model_dir, str(base), warmup=False)
  assert sorted(p.name for p in base.iterdir()) == [f".tmp-7-{os.getpid()}", "1"]


def test_a_failure_mid_export_leaves_no_version_behind(exported, tmp_path, monkeypatch):
  model_dir, _ = exported
  def fail(path, *signatures):
    del signatures
    assert os.path.isfile(os.path.join(os.path.dirname(os.path.dirname(path)), "saved_model.pb"))  # mid-way
    raise OSError("disk full")
  monkeypatch.setattr(warmup, "write", fail)
  base = str(tmp_path / "models")
  with pytest.raises(OSError, match=r"models: could not write version 1 \(disk full\); nothing was exported"):
    savedmodel.export(model_dir, base)
  assert os.listdir(base) == []


def test_an_export_base_that_is_a_file_is_refused_with_a_sentence(exported, tmp_path):
  model_dir, _ = exported
  (tmp_path / "models").write_text("not a directory")
  with pytest.raises(OSError, match=r"models: cannot export there \(File exists\); expected a writable directory"):
    savedmodel.export(model_dir, str(tmp_path / "models"), warmup=False)
  assert (tmp_path / "models").read_text() == "not a directory"


def test_export_rejects_bad_arguments(exported, tmp_path):
  model_dir, _ = exported
  with pytest.raises(ValueError, match="version=-1"):
    savedmodel.export(model_dir, str(tmp_path / "m"), version=-1)
  with pytest.raises(ValueError, match=r"thresholds: expected 36 values, got shape \(3,\)"):
    savedmodel.export(model_dir, str(tmp_path / "m"), thresholds=[0.5, 0.5, 0.5])
  with pytest.raises(FileNotFoundError, match="neither a SavedModel"):
    savedmodel.version_dir(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="was .* exported by export.py"):
    savedmodel.read_metadata(str(tmp_path))
  (tmp_path / "assets.extra").mkdir()
  (tmp_path / "assets.extra" / savedmodel.METADATA_FILE).write_text('{"categories": []}')
  with pytest.raises(ValueError, match=r"disaster_tf.json: not the metadata export.py writes \(KeyError: 'config'\)"):
    savedmodel.read_metadata(str(tmp_path))


def test_export_cli(exported, tmp_path):
  model_dir, _ = exported
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  base = tmp_path / "models"
  result = subprocess.run([sys.executable, os.path.join(ROOT, "export.py"), f"--model_dir={model_dir}",
                           f"--export_base={base}", "--version=7", "--nowarmup"], capture_output=True,
                          text=True, env=env, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip().endswith(str(base / "7"))
  assert not os.path.exists(base / "7" / "assets.extra" / savedmodel.WARMUP_FILE)
  # A missing model dir is an OSError, which the command's tail (cli.run: tests/test_cli.py) turns into a sentence.
  with pytest.raises(FileNotFoundError, match="none/config.json: no such file"):
    savedmodel.export(str(tmp_path / "none"), str(base))


def test_a_linear_model_exports_and_serves_raw_text(tmp_path):
  from tests.train.test_checkpoint import write_model_dir  # pylint: disable=import-outside-toplevel
  config = fixtures.tiny_config(str(tmp_path / "data"))
  config = config.__class__(model=config.model.__class__(architecture="linear", char_ngrams=(2, 4)), train=config.train)
  write_model_dir(tmp_path / "model", config)  # random weights: what is checked is that the export computes as they do
  path = savedmodel.export(str(tmp_path / "model"), str(tmp_path / "models"), warmup=False)
  out = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(MESSAGES + [""]))
  np.testing.assert_allclose(out["scores"].numpy()[:5], in_memory_scores(str(tmp_path / "model"), MESSAGES),
                             rtol=1e-5, atol=1e-6)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:  # the TF Serving way
    signature = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path).signature_def["serving_default"]
    scores = sess.run(signature.outputs["scores"].name, {signature.inputs["text"].name: MESSAGES})
  np.testing.assert_allclose(scores, out["scores"].numpy()[:5], rtol=1e-5, atol=1e-6)
  assert_only_allowed_ops(path)


def test_thresholds_file_errors(tmp_path):
  np.testing.assert_array_equal(ckpt_lib.read_thresholds(str(tmp_path)), np.full(36, 0.5, np.float32))
  (tmp_path / "thresholds.json").write_text('{"water": 0.3}')
  with pytest.raises(ValueError, match="expected one threshold for each of the 36 categories, found 1"):
    ckpt_lib.read_thresholds(str(tmp_path))
  (tmp_path / "thresholds.json").write_text('{"water": 0.3,')  # cut short by hand
  with pytest.raises(ValueError, match=r"thresholds.json: not a thresholds file written by train.py \(Expecting"):
    ckpt_lib.read_thresholds(str(tmp_path))
  ckpt_lib.write_thresholds(np.full(36, 0.5), str(tmp_path))
  (tmp_path / "thresholds.json").write_text((tmp_path / "thresholds.json").read_text().replace("0.5", "1.5", 1))
  with pytest.raises(ValueError, match=r"thresholds.json: thresholds must be probabilities in \[0, 1\]"):
    ckpt_lib.read_thresholds(str(tmp_path))


def test_the_serving_function_traces_once_for_every_batch_size(exported):
  model_dir, _ = exported
  loaded = ckpt_lib.load_model(model_dir)
  module = module_lib.ServingModule(module_lib.Member(loaded.model, loaded.featurizer, np.full(36, 0.5)))
  for batch in (1, 5, 0, 64, 2):
    module.predict(tf.constant(["we need water"] * batch, tf.string))
  assert module.predict.experimental_get_tracing_count() == 1


@pytest.fixture(scope="module")
def multilingual(tmp_path_factory):
  """A tiny model trained on the messages and their originals, with the lexicon (configs/multilingual.flags'
  choices): (the data's directory, its run's final report)."""
  from disaster_tf.train import loop  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp("multilingual")
  fixtures.write_two_file(root / "data", fixtures.synthetic_rows(200), originals=True)
  config = fixtures.tiny_config(str(root / "data"), epochs=3, text_fields=("message", "original"))
  config = dataclasses.replace(config, model=dataclasses.replace(config.model, lexicon=True))
  return root, loop.train_and_evaluate(config, str(root / "model"), verbose=0)


def test_a_multilingual_model_answers_a_creole_message_and_reports_both_languages(multilingual):
  from disaster_tf.serve import evaluate  # pylint: disable=import-outside-toplevel
  tmp_path, final = multilingual
  # The report stays on the English messages; the originals get theirs, beside the same messages translated.
  originals, translations = final.languages["original"], final.languages["translation"]
  assert final.scores.examples == originals.examples == translations.examples > 20
  assert originals.micro_f1 > 0.8 and translations.micro_f1 > 0.8
  path = savedmodel.export(str(tmp_path / "model"), str(tmp_path / "models"), warmup=False)
  creole = ["Nou bezwen dlo tanpri", "Tanpri voye manje nan bouk la"]
  water, food = labels.CATEGORIES.index("water"), labels.CATEGORIES.index("food")
  out = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(creole))["labels"].numpy()
  assert out[0, water] == 1 and out[1, food] == 1 and out[0, food] == 0
  # evaluate --text_field=original scores the validation originals as training did.
  scores, _ = evaluate.evaluate_export(path, str(tmp_path / "data"), "validation", text_field="original")
  assert scores.scores.total == pytest.approx(originals.total, abs=1e-9) and scores.text_field == "original"
  fixtures.write_two_file(tmp_path / "english", fixtures.synthetic_rows(80))  # no original anywhere
  with pytest.raises(ValueError, match="no message of the validation split has an original"):
    evaluate.evaluate_export(path, str(tmp_path / "english"), "validation", text_field="original")
  with pytest.raises(ValueError, match="text_field='translation': expected one of message, original"):
    evaluate.evaluate_export(path, str(tmp_path / "data"), "validation", text_field="translation")


def test_a_lexicon_travels_in_the_export_and_serves_as_in_training(multilingual, tmp_path):
  model_dir = str(multilingual[0] / "model")
  # The export is compared with the model dir's featurizer below, which expands `dlo` and `manje`.
  assert {"dlo", "manje"} <= set(ckpt_lib.load_model(model_dir).featurizer.lexicon.sources)
  path = savedmodel.export(model_dir, str(tmp_path / "models"), warmup=False)
  creole = ["Nou bezwen dlo tanpri", "Tanpri voye manje nan bouk la", "dife!", ""]
  out = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(creole))
  np.testing.assert_allclose(out["scores"].numpy()[:3], in_memory_scores(model_dir, creole[:3]),
                             rtol=1e-5, atol=1e-6)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:  # the TF Serving way: the table is initialised
    signature = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path).signature_def["serving_default"]
    scores = sess.run(signature.outputs["scores"].name, {signature.inputs["text"].name: creole})
  np.testing.assert_allclose(scores, out["scores"].numpy(), rtol=1e-5, atol=1e-6)
  assert_only_allowed_ops(path)


def test_a_bfloat16_export_keeps_the_float32_contract(exported, tmp_path):
  model_dir, path = exported
  bf16 = savedmodel.export(model_dir, str(tmp_path / "models"), warmup=False, precision="bfloat16")
  assert savedmodel.read_metadata(bf16).precision == "bfloat16"
  out = tf.saved_model.load(bf16).signatures["serving_default"](text=tf.constant(MESSAGES))
  reference = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(MESSAGES))
  for key in ("scores", "related_probabilities"):
    assert out[key].dtype == tf.float32
    np.testing.assert_allclose(out[key].numpy(), reference[key].numpy(), atol=0.03)  # bfloat16: 8 bits of mantissa
  assert out["labels"].dtype == tf.int32 and out["classes"].dtype == tf.string
  assert_only_allowed_ops(bf16)
  with pytest.raises(ValueError, match="precision='float16': expected one of float32, bfloat16"):
    savedmodel.export(model_dir, str(tmp_path / "models"), precision="float16")


@pytest.fixture(scope="module")
def routed(tmp_path_factory):
  """A tiny routed run (configs/routed.flags' choices): the English-only model, the multilingual one, the gate,
  and its export: (model dir, version dir)."""
  from disaster_tf.train import loop  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp("routed")
  fixtures.write_two_file(root / "data", fixtures.synthetic_rows(200), originals=True)
  config = fixtures.tiny_config(str(root / "data"), epochs=2, text_fields=("message", "original"),
                                route_english=True)
  loop.train_and_evaluate(config, str(root / "model"), verbose=0)
  return str(root / "model"), savedmodel.export(str(root / "model"), str(root / "models"), warmup=False)


def test_a_routed_export_sends_each_message_to_the_model_for_its_side(routed):
  model_dir, path = routed
  english_dir = os.path.join(model_dir, ckpt_lib.ENGLISH_DIR)
  assert config_lib.load(english_dir).train.text_fields == ("message",)  # trained first, on English alone
  texts = ["We need water please help", "Nou bezwen dlo tanpri ede", "fire in the village road", "Dife nan bouk la"]
  out = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(texts))
  sides = [s.decode() for s in out["language"].numpy()]
  assert sides == ["english", "other", "english", "other"]
  assert out["reads_language"].numpy().all()  # a routed export reads both sides
  english, multilingual = in_memory_scores(english_dir, texts), in_memory_scores(model_dir, texts)
  for k, side in enumerate(sides):  # each answered by its side's model alone, at that model's thresholds
    expected = english[k] if side == "english" else multilingual[k]
    np.testing.assert_allclose(out["scores"].numpy()[k], expected, rtol=1e-5, atol=1e-6)
  assert not np.allclose(english[1], multilingual[1])  # the two models do differ
  empty = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant([], tf.string))
  assert empty["scores"].shape == (0, 36)
  metadata = savedmodel.read_metadata(path)
  assert metadata.english_model["model_dir"] == os.path.abspath(english_dir) and not metadata.reads_english_only()
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:  # the TF Serving way
    signature = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path).signature_def["serving_default"]
    scores = sess.run(signature.outputs["scores"].name, {signature.inputs["text"].name: texts})
  np.testing.assert_allclose(scores, out["scores"].numpy(), rtol=1e-5, atol=1e-6)
  assert_only_allowed_ops(path)
  # Explanations too: every text without one of its words is scored by its message's side's model.
  explained = tf.saved_model.load(path).signatures["explain"](text=tf.constant(texts))
  for k, side in enumerate(sides):
    side_dir = english_dir if side == "english" else model_dir
    alone = explain_lib.explain(tf.constant(texts[k:k + 1]),
                                lambda t, s, d=side_dir: tf.constant(in_memory_scores(d, t)))
    np.testing.assert_allclose(explained["contributions"].numpy()[k], alone["contributions"].numpy()[0],
                               rtol=1e-4, atol=1e-5)


def test_a_routed_run_whose_english_model_is_unfinished_is_not_exported(routed, tmp_path):
  model_dir, _ = routed
  copy = tmp_path / "model"
  shutil.copytree(model_dir, copy)
  os.remove(copy / ckpt_lib.ENGLISH_DIR / ckpt_lib.METRICS_FILE)  # as if its English phase were cut short
  with pytest.raises(ValueError, match=r"a routed run \(--route_english\) exports with its English model"):
    savedmodel.export(str(copy), str(tmp_path / "models"), warmup=False)
  assert not (tmp_path / "models").exists() or not os.listdir(tmp_path / "models")  # refused: nothing written
