"""A word lexicon learnt from the training pairs: original word -> English word, applied in the graph.

Every training message that has an original is a pair of texts with the same
meaning: the message as sent (mostly Haitian Creole SMS) and its English
translation. Counting which words of the originals occur in the same pairs as
which words of the translations (the Dice coefficient) pairs `dlo` with
`water`, `lopital` with `hospital`, `rad` with `clothes`. `expand` then appends
each known word's English partner to the standardised text, so a Creole
message also holds the English words the rest of the data (every genre, three
times as many messages) has taught the model about; the original's own words
stay. Rare categories stand to gain most: on the shared data's training split
`clothing`, `electricity` and `hospitals` have 35-72 positive originals each,
against 195-385 positive English messages.

It is learnt from the training split only, saved as `lexicon.tsv` in the model
dir, and carried by the export as a lookup table: serving needs no language
flag and no translation service.
"""

import collections
import dataclasses
import os
from typing import Dict, Iterable, Tuple

import tensorflow as tf

from disaster_tf import config as config_lib
from disaster_tf.data import examples as examples_lib
from disaster_tf.data import text

LEXICON_FILE = "lexicon.tsv"  # `source TAB target`, one pair a line, sorted by source
# A word must be in this many training originals to be paired: below, a Dice score is a coincidence.
MIN_COUNT = 3
# ... and share its pairs with its partner this much: 2 |both| / (|source| + |target|). At 0.3 (~1,760
# pairs) function words got partners too (`mwen` -> `like`) and, in one prototype run, the originals'
# micro-F1 fell to 0.664 (0.672 without a lexicon, 0.671 at 0.5); 0.5 keeps ~950 pairs, mostly content words.
MIN_DICE = 0.5
# A source word that the English messages use at least half as often as the originals is English (or a
# name) already: it is left alone.
MAX_ENGLISH_SHARE = 0.5
_BATCH = 1024  # texts standardised at a time


@dataclasses.dataclass(frozen=True)
class Lexicon:
  """Source words and their English partners, in the same order (sorted by source).

  Attributes:
    sources: standardised words of the originals.
    targets: standardised English words, one per source.
  """

  sources: Tuple[str, ...] = ()
  targets: Tuple[str, ...] = ()

  def __post_init__(self):
    if len(self.sources) != len(self.targets):
      raise ValueError(f"a lexicon needs one target per source: {len(self.sources)} sources, "
                       f"{len(self.targets)} targets")

  def __len__(self) -> int:
    return len(self.sources)


# A rare word this short is too close to too many others for a letter's difference to mean a spelling variant.
MIN_VARIANT_LENGTH = 5


def _one_edit_keys(word: str) -> set:
  """The word and its one-letter deletions (symmetric-delete keys).

  Two words share a key when they are equal, when one edit turns one into the other (a letter inserted,
  dropped or changed, or two neighbours swapped), and also when one letter dropped in one place and another
  added in another does (`tanblemann`, `tranbleman`): two edits of that one kind, close enough for SMS
  spellings; `variants` leaves out a word that comes near two partners.
  """
  return {word} | {word[:i] + word[i + 1:] for i in range(len(word))}


def variants(lexicon: Lexicon, rare: Iterable[str]) -> Lexicon:
  """The lexicon with each rare word that shares a `_one_edit_keys` key with the source words of exactly one
  partner paired with that partner.

  Args:
    lexicon: the pairs `learn` kept.
    rare: words of the originals too rare to pair themselves (and not English).

  Returns:
    A lexicon holding `lexicon`'s pairs and the variants' (sorted by source). A rare word near sources of two
    different partners is ambiguous and left out.
  """
  partners: Dict[str, set] = collections.defaultdict(set)
  for source, target in zip(lexicon.sources, lexicon.targets):
    for key in _one_edit_keys(source):
      partners[key].add(target)
  pairs = dict(zip(lexicon.sources, lexicon.targets))
  for word in rare:
    if word in pairs or len(word) < MIN_VARIANT_LENGTH:
      continue
    found = set().union(*(partners.get(key, set()) for key in _one_edit_keys(word)))
    if len(found) == 1:
      pairs[word] = found.pop()
  kept = sorted(pairs)
  return Lexicon(tuple(kept), tuple(pairs[s] for s in kept))


def learn(pairs: Iterable[Tuple[str, str]], english: Iterable[str], with_variants: bool = False) -> Lexicon:
  """Pairs each frequent word of the originals with the translation word it co-occurs with most.

  Args:
    pairs: (original, translation) standardised texts, one pair per message.
    english: standardised English texts (every training message), to tell
      English words in the originals from words to translate.

  Returns:
    The lexicon; the same for the same input in any order of equal pairs.
  """
  together: Dict[Tuple[str, str], int] = collections.Counter()
  in_sources, in_targets = collections.Counter(), collections.Counter()
  for original, translation in pairs:
    source_words, target_words = set(original.split()), set(translation.split())
    if source_words == target_words:  # an original in English: no translation to learn from
      continue
    in_sources.update(source_words)
    in_targets.update(target_words)
    together.update((s, t) for s in source_words for t in target_words)
  english_counts = collections.Counter(w for message in english for w in set(message.split()))
  best: Dict[str, Tuple[float, str]] = {}  # source -> (dice, target)
  for (source, target), both in together.items():
    if source == target or in_sources[source] < MIN_COUNT:
      continue
    dice = 2 * both / (in_sources[source] + in_targets[target])
    held = best.get(source)
    # Ties go to the alphabetically first target, so the result does not depend on counting order.
    if dice >= MIN_DICE and (held is None or dice > held[0] or (dice == held[0] and target < held[1])):
      best[source] = (dice, target)
  kept = sorted(s for s in best if english_counts[s] < MAX_ENGLISH_SHARE * in_sources[s])
  lexicon = Lexicon(tuple(kept), tuple(best[s][1] for s in kept))
  if not with_variants:
    return lexicon
  rare = sorted(w for w, n in in_sources.items() if n < MIN_COUNT and not english_counts[w])
  return variants(lexicon, rare)


def from_training(train: examples_lib.Examples, with_variants: bool = False) -> Lexicon:
  """Learns the lexicon from a training split's originals and their translations (`learn`)."""
  originals, messages = train.field(examples_lib.ORIGINAL), train.field(examples_lib.MESSAGE)
  translation_of = dict(zip(messages.ids, _standardized(messages)))
  pairs = ((o, translation_of[i]) for i, o in zip(originals.ids, _standardized(originals)))
  return learn(pairs, translation_of.values(), with_variants)


def _standardized(examples: examples_lib.Examples) -> list:
  """The examples' texts through `text.standardize`, as Python strings (words only: ~1 MB here)."""
  ds = examples.texts().batch(_BATCH).map(text.standardize)
  return [t.decode("utf-8") for batch in ds.as_numpy_iterator() for t in batch]


def table(lexicon: Lexicon) -> tf.lookup.StaticHashTable:
  """The lexicon as a lookup table: source -> target, "" for every other word."""
  return tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(tf.constant(lexicon.sources, tf.string),
                                          tf.constant(lexicon.targets, tf.string)), default_value="")


def expand(standardized: tf.Tensor, lookup: tf.lookup.StaticHashTable) -> tf.Tensor:
  """Appends each known word's English partner to standardised texts; elementwise, any shape.

  `"nou bezwen dlo"` -> `"nou bezwen dlo need water"`: the words stay in
  order, the partners follow in the order of their sources.
  """
  flat = tf.reshape(standardized, [-1])  # [n]: the featurizer passes [batch]; any shape comes back as it went
  words = tf.strings.split(flat)  # [n, (words)]
  partners = tf.strings.reduce_join(tf.ragged.map_flat_values(lookup.lookup, words), axis=-1, separator=" ")
  joined = tf.strings.join([flat, partners], separator=" ")
  return tf.reshape(tf.strings.strip(tf.strings.regex_replace(joined, " +", " ")), tf.shape(standardized))


def save(lexicon: Lexicon, model_dir: str) -> str:
  """Writes `<model_dir>/lexicon.tsv` atomically (an empty file for an empty lexicon)."""
  path = os.path.join(model_dir, LEXICON_FILE)
  config_lib.write_text_atomic(path, "".join(f"{s}\t{t}\n" for s, t in zip(lexicon.sources, lexicon.targets)))
  return path


def load(model_dir: str) -> Lexicon:
  """Reads the lexicon `save` wrote.

  Raises:
    FileNotFoundError: no lexicon.tsv in `model_dir`.
    ValueError: a line that is not two standardised words separated by a tab, or a word paired twice.
  """
  path = os.path.join(model_dir, LEXICON_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file; is {model_dir!r} a model dir written by train.py "
                            "with --lexicon?")
  sources, targets, lines = [], [], {}
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
      fields = line.rstrip("\n").split("\t")
      if len(fields) != 2 or not all(fields) or any(w != w.strip() or " " in w for w in fields):
        raise ValueError(f"{path}, line {number}: expected a word, a tab and its English partner (no "
                         f"spaces), found {line.rstrip()[:80]!r}")
      if fields[0] in lines:  # the lookup table takes one partner a word
        raise ValueError(f"{path}, line {number}: {fields[0]!r} is paired already on line {lines[fields[0]]}; "
                         "keep one partner a word")
      lines[fields[0]] = number
      sources.append(fields[0])
      targets.append(fields[1])
  return Lexicon(tuple(sources), tuple(targets))
