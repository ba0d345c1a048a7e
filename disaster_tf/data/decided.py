"""The standing decisions as labelled data: the two-file export, a training run's snapshot, --data with them applied.

`export_csv` writes them in the data's two-file format for a user (`disaster-decisions --export_dir`); it
refuses a directory that holds those files already and writes each file whole. `take_snapshot` writes the same,
with each decision's number, for `train.py --decisions`: a run takes one snapshot when it starts and keeps it in
its model dir, so the linear member, the network, the refit and a resume all read the same decisions, whatever
operators save meanwhile. `merged_data` applies a snapshot over --data: a decision overrides the data's rows of
its message, which must be the same text under the same id (and keeps that id's side of the split, so that the
validation set stays the one reported before); the same id with another text is another message, and both are
kept (said in the log, naming both texts). A message --data lacks is written under an id `train_id` gives it,
one the split puts in training: every new decision teaches the next model (issue 38 measured the old rule, by
the hash of the message, which sent a quarter of them to tune and validation).
"""

import csv
import dataclasses
import io
import os
from typing import Callable, Dict, List, Optional, Tuple

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf.data import decisions
from disaster_tf.data import hxl
from disaster_tf.data import keys
from disaster_tf.data import textfiles

GENRE = "direct"  # a decided message the data lacks was sent to the operators: the data's `direct` genre
DECISION_COLUMN = "decision"  # a snapshot's messages file: each row's decision number


@dataclasses.dataclass(frozen=True)
class Merged:
  """What `merged_data` applied."""

  ids: Tuple[str, ...]  # the decided messages' ids in the merged data, one per decision
  overridden: int  # decisions that replaced rows of --data (the same id and text): they keep its side
  new: int  # decisions of messages --data lacks: written under `train_id`'s ids, on the training side
  clashes: Tuple[str, ...]  # a sentence per decision whose id --data gives to another text (both kept)


def export_csv(store: decisions.Store, directory: str, with_hxl: bool = False) -> int:
  """Writes the standing decisions as a two-file data directory (with HXL's hashtag rows: `with_hxl`); returns
  how many.

  Raises:
    FileExistsError: `directory` holds a data file already (it is never overwritten).
  """
  return _write(list(store.standing().values()), directory, with_numbers=False, with_hxl=with_hxl)


def take_snapshot(store: decisions.Store, directory: str) -> int:
  """Writes the standing decisions, each with its number, into `directory` (new); returns how many.

  Raises:
    decisions.StoreError: a stored decision training cannot read, named with the command that undoes it.
  """
  standing = list(store.standing().values())
  for d in standing:
    problem = decisions.labels_problem(d.labels)
    if problem:
      raise decisions.StoreError(
          f"{store.path}: decision {d.decision_id} ({d.message[:40]!r}, by {d.operator}) has {problem}; undo it "
          f"(disaster-decisions --db={store.path} --undo={d.decision_id}) and decide the message again")
  return _write(standing, directory, with_numbers=True)


def _write(standing: List[decisions.Decision], directory: str, with_numbers: bool, with_hxl: bool = False) -> int:
  os.makedirs(directory, exist_ok=True)
  there = [n for n in (labels.MESSAGES_FILE, labels.CATEGORIES_FILE) if os.path.exists(os.path.join(directory, n))]
  if there:
    raise FileExistsError(f"{directory}: holds {' and '.join(there)} already; name an empty directory (nothing "
                          "was written)")
  header = ["id", "message", "original", "genre"] + ([DECISION_COLUMN] if with_numbers else [])
  tags = (lambda columns: [hxl.hashtags(columns)]) if with_hxl else (lambda columns: [])
  _write_whole(os.path.join(directory, labels.MESSAGES_FILE), header, tags(header) + [
      [d.message_id, d.message, "", GENRE] + ([str(d.decision_id)] if with_numbers else []) for d in standing])
  _write_whole(os.path.join(directory, labels.CATEGORIES_FILE), ["id", "categories"], tags(["id", "categories"]) +
               [[d.message_id, labels.categories_cell(d.labels)] for d in standing])
  return len(standing)


def _write_whole(path: str, header: List[str], rows: List[List[str]]) -> None:
  """Writes a CSV file whole (config.write_text_atomic: a temporary beside it, fsync, rename)."""
  text = io.StringIO(newline="")
  writer = csv.writer(text)
  writer.writerow(header)
  writer.writerows(rows)
  config_lib.write_text_atomic(path, text.getvalue())


@dataclasses.dataclass(frozen=True)
class _Snapshot:
  key: str
  message: str
  categories: str
  number: str


def read_snapshot(directory: str) -> List[_Snapshot]:
  """The decisions `take_snapshot` wrote, in their order."""
  categories = {row["id"]: row["categories"] for _, row in textfiles.read_rows(
      os.path.join(directory, labels.CATEGORIES_FILE), ("id", "categories"))}
  return [_Snapshot(row["id"], row["message"], categories[row["id"]], row.get(DECISION_COLUMN, "?"))
          for _, row in textfiles.read_rows(os.path.join(directory, labels.MESSAGES_FILE), ("id", "message"))]


def merged_data(data_dir: str, snapshot_dir: str, out_dir: str,
                train_id: Callable[[str], str] = lambda i: i) -> Merged:
  """Writes `data_dir` (two-file) with the snapshot's decisions applied into `out_dir` (two-file, normalised).

  `train_id` maps the id of a message --data lacks to the id it is written under (the split's training side).

  Raises:
    decisions.StoreError: `data_dir` is not a two-file data directory.
    textfiles.DataError: a file of it that training would refuse too.
  """
  if not os.path.isdir(data_dir):
    raise decisions.StoreError(f"--data={data_dir}: --decisions needs the two-file format (a directory with "
                               f"{labels.MESSAGES_FILE} and {labels.CATEGORIES_FILE}); export a wide file's "
                               "decisions with disaster-decisions instead")
  messages_path = os.path.join(data_dir, labels.MESSAGES_FILE)
  message_rows = list(textfiles.read_rows(messages_path, ("id", "message")))
  texts: Dict[str, List[str]] = {}
  for _, row in message_rows:
    texts.setdefault(row["id"].strip(), []).append(row["message"])
  placed = _place(read_snapshot(snapshot_dir), texts)
  replaced = {given for given, _, clash in placed if clash is None and given in texts}
  placed = [(given if given in replaced else train_id(given), d, clash) for given, d, clash in placed]
  os.makedirs(out_dir, exist_ok=True)
  header = [h for h in (message_rows[0][1] if message_rows else {"id": "", "message": ""})]
  _write_merged(os.path.join(out_dir, labels.MESSAGES_FILE), header, [
      {**row, "id": row["id"].strip()} for _, row in message_rows if row["id"].strip() not in replaced], [
      {"id": given, "message": d.message, "original": "", "genre": GENRE} for given, d, _ in placed])
  category_rows = [row for _, row in textfiles.read_rows(os.path.join(data_dir, labels.CATEGORIES_FILE),
                                                         ("id", "categories"))]
  _write_merged(os.path.join(out_dir, labels.CATEGORIES_FILE), ["id", "categories"], [
      {"id": row["id"].strip(), "categories": row["categories"]} for row in category_rows
      if row["id"].strip() not in replaced], [{"id": given, "categories": d.categories} for given, d, _ in placed])
  return Merged(tuple(given for given, _, _ in placed), len(replaced), len(placed) - len(replaced),
                tuple(clash for _, _, clash in placed if clash is not None))


def _place(snapshot: List[_Snapshot], texts: Dict[str, List[str]]) -> List[Tuple[str, _Snapshot, Optional[str]]]:
  """(its id in the merged data, the decision, a sentence if its id names another text in --data) for each."""
  given_count: Dict[str, int] = {}
  for d in snapshot:
    given = keys.id_of(d.key)
    if given is not None:
      given_count[given] = given_count.get(given, 0) + 1
  placed = []
  for d in snapshot:
    given = keys.id_of(d.key)
    if given is not None and given in texts:
      if any(t.strip() == d.message.strip() for t in texts[given]):
        placed.append((given, d, None))  # the same message: the decision overrides its rows
        continue
      placed.append((d.key, d, f"decision {d.number} ({d.message[:60]!r}) and --data's id {given} "
                               f"({texts[given][0][:60]!r}) are different messages under one id: both kept, the "
                               f"decision as id {d.key!r}"))
      continue
    unique = given is not None and given_count[given] == 1
    placed.append((given if unique else d.key, d, None))
  return placed


def _write_merged(path: str, header: List[str], rows: List[Dict[str, str]], added: List[Dict[str, str]]) -> None:
  with open(path, "w", encoding="utf-8", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore", restval="")
    writer.writeheader()
    writer.writerows(rows)
    writer.writerows(added)
