"""The pretrained encoder: a tiny BERT checkpoint in the usual layout, its weights where they belong, its output
against a NumPy forward pass of the same checkpoint, and every malformed directory named."""

import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf.model import encoder
from disaster_tf.model import wordpiece

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "water", "food", "need", "we", "##s", "help"]
SHAPE = dict(vocab_size=len(VOCAB), hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
             max_position_embeddings=16, type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu",
             model_type="bert")


def tiny_weights(seed=0, prefix=""):
  """Random weights under BERT's PyTorch names ([out, in] for every Linear)."""
  rng = np.random.default_rng(seed)
  h, m, v = SHAPE["hidden_size"], SHAPE["intermediate_size"], SHAPE["vocab_size"]
  def r(*shape):
    return rng.normal(0, 0.5, shape).astype(np.float32)
  w = {"embeddings.word_embeddings.weight": r(v, h), "embeddings.position_embeddings.weight": r(16, h),
       "embeddings.token_type_embeddings.weight": r(2, h), "embeddings.LayerNorm.weight": 1 + r(h),
       "embeddings.LayerNorm.bias": r(h), "pooler.dense.weight": r(h, h), "pooler.dense.bias": r(h)}
  for i in range(SHAPE["num_hidden_layers"]):
    p = f"encoder.layer.{i}."
    for name, (out, inp) in {"attention.self.query": (h, h), "attention.self.key": (h, h),
                             "attention.self.value": (h, h), "attention.output.dense": (h, h),
                             "intermediate.dense": (m, h), "output.dense": (h, m)}.items():
      w[p + name + ".weight"], w[p + name + ".bias"] = r(out, inp), r(out)
    for name in ("attention.output.LayerNorm", "output.LayerNorm"):
      w[p + name + ".weight"], w[p + name + ".bias"] = 1 + r(h), r(h)
  return {prefix + k: v for k, v in w.items()}


def write_checkpoint(directory, weights=None, config=None, vocab=None, lower_case=None) -> str:
  from safetensors import numpy as safetensors_numpy  # pylint: disable=import-outside-toplevel
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, "config.json"), "w") as f:
    json.dump(config or SHAPE, f)
  with open(os.path.join(directory, "vocab.txt"), "w") as f:
    f.write("".join(t + "\n" for t in (vocab or VOCAB)))
  if lower_case is not None:
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
      json.dump({"do_lower_case": lower_case}, f)
  safetensors_numpy.save_file(weights if weights is not None else tiny_weights(), os.path.join(directory,
                                                                                                "model.safetensors"))
  return str(directory)


def numpy_bert(w, ids):
  """BERT's forward pass written out in NumPy from the checkpoint's own arrays; the mean of the unpadded states."""
  def norm(x, name):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * w[name + ".weight"] + w[name + ".bias"]
  def linear(x, name):
    return x @ w[name + ".weight"].T + w[name + ".bias"]
  gelu = np.vectorize(lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2))))
  batch, length = ids.shape
  x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
       + w["embeddings.token_type_embeddings.weight"][0])
  x = norm(x, "embeddings.LayerNorm")
  keep = (ids != 0).astype(np.float64)
  heads, width = SHAPE["num_attention_heads"], SHAPE["hidden_size"] // SHAPE["num_attention_heads"]
  for i in range(SHAPE["num_hidden_layers"]):
    p = f"encoder.layer.{i}."
    q, k, v = (linear(x, p + f"attention.self.{n}").reshape(batch, length, heads, width).transpose(0, 2, 1, 3)
               for n in ("query", "key", "value"))
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(width) + (1 - keep)[:, None, None, :] * -1e9
    attention = np.exp(scores - scores.max(-1, keepdims=True))
    attention /= attention.sum(-1, keepdims=True)
    context = (attention @ v).transpose(0, 2, 1, 3).reshape(batch, length, heads * width)
    x = norm(x + linear(context, p + "attention.output.dense"), p + "attention.output.LayerNorm")
    x = norm(x + linear(gelu(linear(x, p + "intermediate.dense")), p + "output.dense"), p + "output.LayerNorm")
  return (x * keep[:, :, None]).sum(1) / keep.sum(1, keepdims=True)


def built(directory):
  shape = encoder.read_shape(directory)
  layer = encoder.Encoder(shape)
  layer(tf.zeros([1, 4], tf.int64))
  return shape, layer


def test_the_tiny_checkpoint_reproduces_its_own_numpy_forward_pass(tmp_path):
  directory = write_checkpoint(tmp_path / "bert", tiny_weights(prefix="bert."))  # some checkpoints prefix "bert."
  shape, layer = built(directory)
  assert encoder.assign(layer, encoder.read_weights(directory), directory) == 5 + 2 * 16
  # A known weight lands where it belongs: the word embedding of "water".
  weights = tiny_weights()
  np.testing.assert_array_equal(layer.word.embeddings.numpy()[4], weights["embeddings.word_embeddings.weight"][4])
  ids = np.array([[2, 7, 6, 4, 3, 0, 0], [2, 5, 8, 3, 0, 0, 0]], np.int64)  # [CLS] we need water [SEP] + padding
  np.testing.assert_allclose(layer(tf.constant(ids)).numpy(), numpy_bert(weights, ids), rtol=1e-4, atol=1e-4)
  assert shape.lower_case and encoder.read_vocabulary(directory, shape) == tuple(VOCAB)


def test_a_checkpoint_saves_and_restores_every_weight_of_the_encoder(tmp_path):
  """Each block is tracked: a fresh encoder restored from a checkpoint computes what the saved one did."""
  directory = write_checkpoint(tmp_path / "bert")
  _, saved = built(directory)
  encoder.assign(saved, encoder.read_weights(directory), directory)
  path = tf.train.Checkpoint(encoder=saved).save(str(tmp_path / "ckpt" / "c"))
  _, fresh = built(directory)
  tf.train.Checkpoint(encoder=fresh).restore(path).assert_consumed()
  ids = tf.constant([[2, 7, 6, 4, 3, 0]], tf.int64)
  np.testing.assert_array_equal(fresh(ids).numpy(), saved(ids).numpy())
  assert len(fresh.weights) == len(saved.weights) == 5 + 2 * 16


def test_older_layer_norm_names_and_the_tokenizers_casing_are_read(tmp_path):
  weights = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
             for k, v in tiny_weights().items()}
  directory = write_checkpoint(tmp_path / "old", weights, lower_case=False)
  shape, layer = built(directory)
  encoder.assign(layer, encoder.read_weights(directory), directory)
  np.testing.assert_array_equal(layer.embedding_norm.gamma.numpy(), weights["embeddings.LayerNorm.gamma"])
  assert not shape.lower_case


def test_a_missing_or_misshapen_weight_is_named(tmp_path):
  weights = tiny_weights()
  del weights["encoder.layer.1.output.dense.bias"]
  directory = write_checkpoint(tmp_path / "a", weights)
  _, layer = built(directory)
  with pytest.raises(encoder.EncoderError, match=r"a: no weight 'encoder.layer.1.output.dense.bias'"):
    encoder.assign(layer, encoder.read_weights(directory), directory)
  weights = tiny_weights()
  weights["encoder.layer.0.intermediate.dense.weight"] = np.zeros((16, 4), np.float32)
  with pytest.raises(encoder.EncoderError, match=r"intermediate.dense.weight has shape \(4, 16\), the encoder "
                                                 r"needs \(8, 16\)"):
    encoder.assign(layer, weights, "b")


@pytest.mark.parametrize("change,message", [
    (dict(config={**SHAPE, "hidden_act": "relu"}), r"hidden_act='relu'.*this encoder is BERT's"),
    (dict(config={k: v for k, v in SHAPE.items() if k != "num_hidden_layers"}), r"config.json: no num_hidden_layers"),
    (dict(config={**SHAPE, "num_attention_heads": 3}), r"hidden_size 8 is not a multiple of num_attention_heads 3"),
    (dict(config={**SHAPE, "hidden_size": 0}), r"config.json: hidden_size is 0; expected a positive whole number"),
    (dict(config={**SHAPE, "num_hidden_layers": "2"}), r'num_hidden_layers is "2"; expected a positive whole number'),
    (dict(config={**SHAPE, "layer_norm_eps": True}), r"layer_norm_eps is true; expected a positive number"),
])
def test_a_config_that_is_not_berts_is_named(tmp_path, change, message):
  directory = write_checkpoint(tmp_path / "c", **change)
  with pytest.raises(encoder.EncoderError, match=message):
    encoder.read_shape(directory)


def test_a_tokenizer_casing_that_is_not_a_boolean_and_a_vocabulary_that_is_not_one_are_named(tmp_path):
  directory = write_checkpoint(tmp_path / "c")
  with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
    json.dump({"do_lower_case": "false"}, f)  # a string: bool() would read it as true
  with pytest.raises(encoder.EncoderError, match=r'tokenizer_config.json: do_lower_case is "false"; expected true or '
                                                 "false"):
    encoder.read_shape(directory)
  twice = write_checkpoint(tmp_path / "t", vocab=VOCAB[:-1] + ["water"])
  with pytest.raises(encoder.EncoderError, match=r"vocab.txt:10: the piece 'water' again \(first on line 5\)"):
    encoder.read_vocabulary(twice, encoder.read_shape(twice))
  with open(os.path.join(twice, "vocab.txt"), "wb") as f:
    f.write("\n".join(VOCAB[:5]).encode() + b"\ncaf\xe9\n" + "\n".join(VOCAB[6:]).encode())
  with pytest.raises(encoder.EncoderError, match=r"vocab.txt:6: not UTF-8"):
    encoder.read_vocabulary(twice, encoder.read_shape(twice))


def test_a_sequence_longer_than_the_checkpoints_positions_is_refused_naming_both(tmp_path):
  directory = write_checkpoint(tmp_path / "c")
  too_long = config_lib.ModelConfig(architecture="encoder", pretrained_encoder=directory,
                                    sequence_length=SHAPE["max_position_embeddings"] + 1)
  with pytest.raises(encoder.EncoderError, match=rf"--sequence_length={SHAPE['max_position_embeddings'] + 1}: over "
                                                 rf"the {SHAPE['max_position_embeddings']} positions .*config.json"):
    wordpiece.from_checkpoint(too_long)


def test_missing_files_and_a_vocabulary_that_does_not_fit_are_named(tmp_path):
  with pytest.raises(encoder.EncoderError, match=r"config.json: no such file; expected a BERT checkpoint directory"):
    encoder.read_shape(str(tmp_path))
  directory = write_checkpoint(tmp_path / "v", vocab=VOCAB[:-1])
  shape = encoder.read_shape(directory)
  with pytest.raises(encoder.EncoderError, match=r"vocab.txt: 9 pieces, but config.json says vocab_size 10"):
    encoder.read_vocabulary(directory, shape)
  directory = write_checkpoint(tmp_path / "s", vocab=["[PAD]", "[UNK]"] + VOCAB[4:] + ["x", "y"])
  with pytest.raises(encoder.EncoderError, match=r"vocab.txt: no \[CLS\], \[SEP\]"):
    encoder.read_vocabulary(directory, shape)
  os.remove(os.path.join(directory, "vocab.txt"))
  with pytest.raises(encoder.EncoderError, match=r"vocab.txt: no such file"):
    encoder.read_vocabulary(directory, shape)
  with open(os.path.join(directory, "model.safetensors"), "wb") as f:
    f.write(b"not a safetensors file")
  with pytest.raises(encoder.EncoderError, match=r"model.safetensors: not a safetensors file"):
    encoder.read_weights(directory)
  os.remove(os.path.join(directory, "model.safetensors"))
  with pytest.raises(encoder.EncoderError, match=r"model.safetensors: no such file"):
    encoder.read_weights(directory)
  with open(os.path.join(directory, "config.json"), "w") as f:
    f.write("{not json")
  with pytest.raises(encoder.EncoderError, match=r"config.json: not JSON"):
    encoder.read_shape(directory)
  with open(os.path.join(directory, "config.json"), "w") as f:
    f.write("[1, 2]")
  with pytest.raises(encoder.EncoderError, match=r"config.json: expected a JSON object"):
    encoder.read_shape(directory)


def test_an_encoder_model_trains_from_the_checkpoint_and_exports_text_in(tmp_path):
  """A tiny checkpoint whose vocabulary spells the generated messages: one epoch, then export and serve raw text."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  from disaster_tf.model import networks  # pylint: disable=import-outside-toplevel
  from disaster_tf.serve import savedmodel  # pylint: disable=import-outside-toplevel
  from disaster_tf.train import checkpoint as ckpt_lib  # pylint: disable=import-outside-toplevel
  from disaster_tf.train import loop  # pylint: disable=import-outside-toplevel
  from tests import fixtures  # pylint: disable=import-outside-toplevel
  words = sorted({w for k in fixtures.KEYWORDS for w in (k,)} | set(fixtures.FILLER) | {"we", "!"})
  vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + words + ["##s"]
  config_json = {**SHAPE, "vocab_size": len(vocab)}
  rng = np.random.default_rng(1)
  weights = tiny_weights()
  weights["embeddings.word_embeddings.weight"] = rng.normal(0, 0.5, (len(vocab), 8)).astype(np.float32)
  checkpoint = write_checkpoint(tmp_path / "bert", weights, config=config_json, vocab=vocab)
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(120))
  config = fixtures.tiny_config(str(tmp_path / "data"), epochs=1, learning_rate=1e-3)
  config = dataclasses.replace(config, model=dataclasses.replace(
      config.model, architecture="encoder", pretrained_encoder=checkpoint, sequence_length=12))
  model_dir = str(tmp_path / "m")
  loop.train_and_evaluate(config, model_dir, verbose=0)
  assert sorted(f for f in os.listdir(model_dir) if f.endswith((".txt", ".json")) and "metrics" not in f) == [
      "config.json", "encoder.json", "thresholds.json", "wordpiece.txt"]
  loaded = ckpt_lib.load_model(model_dir)  # from the model dir alone: its shape and vocabulary files
  ids = loaded.featurizer(tf.constant(["We need WATER!", "", "Zzz"]))["wordpiece_ids"].numpy()
  water, we = vocab.index("water"), vocab.index("we")
  assert ids[0, :5].tolist() == [2, we, vocab.index("[UNK]"), water, vocab.index("!")] and ids[0, 5] == 3  # cased in
  assert ids[1, :3].tolist() == [2, 3, 0] and ids.shape == (3, 12)
  # The fine-tuned encoder moved away from the checkpoint (one epoch trained it).
  trained = loaded.model.get_layer(networks.ENCODER).word.embeddings.numpy()
  assert not np.allclose(trained, weights["embeddings.word_embeddings.weight"])
  # The export serves what the model dir restores (every weight saved: none drawn afresh at load).
  texts = ["we need water", "", "fire in the village"]
  in_memory = networks.probabilities(loaded.model(loaded.featurizer(tf.constant(texts)), training=False))[0]
  again = ckpt_lib.load_model(model_dir)
  np.testing.assert_array_equal(
      networks.probabilities(again.model(again.featurizer(tf.constant(texts)), training=False))[0], in_memory)
  path = savedmodel.export(model_dir, str(tmp_path / "export"), warmup=False)
  out = savedmodel.load_predict(path)(text=tf.constant(texts))  # TF Text's ops registered, as predict.py loads it
  np.testing.assert_allclose(out["scores"].numpy()[[0, 2]], in_memory.numpy()[[0, 2]], rtol=1e-5, atol=1e-6)
  assert out["scores"].shape == (3, 36)
  assert out["scores"].numpy()[1].max() == 0.0  # no piece: the defined empty answer
  assert config_lib.load(model_dir).model.pretrained_encoder == checkpoint
  from tests.serve import test_savedmodel  # pylint: disable=import-outside-toplevel
  test_savedmodel.assert_only_allowed_ops(path, text_ops=True)
  # As TF Serving loads it (a session and the saver's restore op), with TF Text's ops registered.
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    meta_graph = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
    signature = meta_graph.signature_def["serving_default"]
    scores = sess.run(signature.outputs["scores"].name, {signature.inputs["text"].name: texts})
  np.testing.assert_allclose(scores, out["scores"].numpy(), rtol=1e-5, atol=1e-6)


def test_the_tokenizer_and_the_model_dir_files_refuse_what_they_cannot_use(tmp_path, monkeypatch):
  from disaster_tf.model import features  # pylint: disable=import-outside-toplevel
  from disaster_tf.model import networks  # pylint: disable=import-outside-toplevel
  with pytest.raises(ValueError, match=r"vocabulary starts with '\[UNK\]'; expected '\[PAD\]' \(id 0\)"):
    wordpiece.WordPieceIds(["[UNK]", "[PAD]", "[CLS]", "[SEP]"], True, 8)
  with pytest.raises(FileNotFoundError, match=r"encoder.json: no such file; is .* a model dir written by train.py"):
    wordpiece.load(str(tmp_path))
  shape = encoder.read_shape(write_checkpoint(tmp_path / "b"))
  wordpiece.save(VOCAB, shape, str(tmp_path))
  assert wordpiece.load(str(tmp_path)) == (tuple(VOCAB), shape)
  (tmp_path / "encoder.json").write_text('{"hidden": 3}')
  with pytest.raises(ValueError, match=r"encoder.json: not an encoder shape written by train.py"):
    wordpiece.load(str(tmp_path))
  c = config_lib.ModelConfig(architecture="encoder", pretrained_encoder="b")
  with pytest.raises(ValueError, match=r"--model=encoder: no encoder shape given"):
    networks.build_model(c, {features.WORDPIECE_IDS: len(VOCAB)})
  monkeypatch.setitem(__import__("sys").modules, "safetensors", None)  # as if the extra were not installed
  with pytest.raises(encoder.EncoderError, match=r"reading it needs safetensors; pip install -e '.\[encoder\]'"):
    encoder.read_weights(str(tmp_path / "b"))
