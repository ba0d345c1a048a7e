"""Operators' CSV files in and out: every row scored or named, no input lost, no cell a spreadsheet runs.

`score_csv` streams a CSV file of any size through a scorer (`predict.Scorer`)
and writes the input's columns with the answers added (`predict.SCORED_COLUMNS`);
the triage page's upload reads with the same `read_rows`. The rules, each for
a file someone would otherwise lose:

  - everything that can be checked is checked before the model loads
    (`check_job`): the input exists and is UTF-8 with a `message` column, no
    column is named twice or like an answer column (it would be overwritten),
    the output is not the input (by inode: links included) and its directory
    exists;
  - a row that cannot be parsed (a stray quote, a field over the csv module's
    limit, bytes that are not UTF-8, another number of fields) is skipped,
    counted and named by its line, and the read goes on: a quote that is never
    closed costs its own row, not the rest of the file (`_Records`);
  - the output is written whole in a hidden temporary file beside it, then
    renamed into place with the mode of the file it replaces (else the
    umask's); the temporary is removed on any exit, SIGTERM included (the
    CLI turns it into SystemExit), and one left by a killed run is removed by
    the next run for the same output;
  - every cell a spreadsheet would evaluate as a formula is neutralised
    (`neutralise`, OWASP's rule), input columns included: messages are public
    text.
"""

import collections
import contextlib
import csv
import dataclasses
import glob
import os
import re
import tempfile
from typing import Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from disaster_tf.data import hxl
from disaster_tf.data import textfiles
from disaster_tf.serve import predict

# OWASP, "CSV Injection": a cell starting with one of these is evaluated by Excel, LibreOffice or Google Sheets
# (=HYPERLINK(...), =cmd|...); a leading single quote makes it text. The page's download applies the same rule
# (app.js reads these from /api/model).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
MAX_PROBLEMS = 20  # skipped rows named in a report; the count covers them all
# A quoted field over more lines than this is taken for a quote never closed: re-reading the lines after each
# such quote costs at most this many lines again, never the rest of the file (a file of stray quotes stays linear).
MAX_RECORD_LINES = 100



def neutralise(cell: str) -> str:
  """`cell`, with a single quote in front if a spreadsheet would evaluate it (see FORMULA_TRIGGERS)."""
  return "'" + cell if cell[:1] in FORMULA_TRIGGERS else cell


@dataclasses.dataclass
class ScoreReport:
  """What a scoring read, scored and skipped (each skipped row named by its line, the first MAX_PROBLEMS kept)."""

  rows: int = 0
  scored: int = 0
  unreadable: int = 0
  not_english: int = 0  # scored rows an English-only model's language gate calls another language
  problems: List[str] = dataclasses.field(default_factory=list)

  def add_problem(self, text: str) -> None:
    self.unreadable += 1
    if len(self.problems) < MAX_PROBLEMS:
      self.problems.append(text)

  def summary(self) -> str:
    text = f"{self.rows} rows read, {self.scored} scored, {self.unreadable} not readable"
    if self.not_english:
      text += f", {self.not_english} not English (this model reads English only: read them yourself)"
    more = self.unreadable - len(self.problems)
    return (text + "".join(f"\n  {p}" for p in self.problems)
            + (f"\n  ... and {more} more" if more > 0 else ""))


class InputError(ValueError):
  """A file or request the scorer cannot use at all: names the file (or field), the line and what was expected."""


def checked_lines(binary: Iterable[bytes], where: str, report: ScoreReport) -> Iterator[str]:
  """Decoded lines of a file opened in binary; a line that is not UTF-8 is named and read as a blank line.

  Raises:
    InputError: the file is in another encoding (`textfiles.encoding_problem` of its first line).
  """
  for number, raw in enumerate(binary, 1):
    problem = textfiles.encoding_problem(raw) if number == 1 else None
    if problem:
      raise InputError(f"{where}: {problem}")
    try:
      yield raw.decode("utf-8")
    except UnicodeDecodeError as e:
      report.rows += 1  # a row, though not a readable one
      report.add_problem(f"{where}:{number}: byte {e.start + 1} is not valid UTF-8; that row is skipped")
      yield "\n"


class _Records:
  """(first line, fields or None, error or None) for each CSV record of `lines`, recovering from bad ones.

  The csv module reads a record after an error as if nothing happened, so a bad one-line record costs that
  line only. A record that fails after taking several lines (a quote never closed swallows the lines after it,
  up to the end of the file, the field size limit or MAX_RECORD_LINES) is named at its first line, and its
  other lines are read again: one stray quote costs one row.
  """

  def __init__(self, lines: Iterable[str]):
    self._source = iter(lines)
    self._again: Deque[Tuple[int, str]] = collections.deque()
    self._taken: List[Tuple[int, str]] = []  # the lines of the record being read
    self._count = 0
    self._reader = csv.reader(self, strict=True)

  def __iter__(self):
    return self

  def __next__(self) -> str:  # the csv reader's source of lines (it may be called again after the end)
    if self._again:
      item = self._again.popleft()
    else:
      line = next(self._source)
      self._count += 1
      item = (self._count, line)
    if len(self._taken) == MAX_RECORD_LINES:
      self._again.appendleft(item)
      raise csv.Error(f"a quoted field runs over more than {MAX_RECORD_LINES} lines: a quote never closed?")
    self._taken.append(item)
    return item[1]

  def records(self) -> Iterator[Tuple[int, Optional[List[str]], Optional[str]]]:
    while True:
      self._taken = []
      try:
        row = next(self._reader)
      except StopIteration:
        return
      except csv.Error as e:
        if not self._taken:
          return
        self._again.extendleft(reversed(self._taken[1:]))
        yield self._taken[0][0], None, str(e)
        continue
      yield self._taken[0][0], row, None


def check_header(header: Sequence[str], where: str, text_column: str = predict.TEXT_COLUMN) -> None:
  """Refuses a header the output cannot keep whole: no `text_column`, a name twice, or an answer column's name.

  Raises:
    InputError: naming the columns.
  """
  if text_column not in header:
    raise InputError(f"{where}:1: no {text_column!r} column; found {', '.join(header)} (the messages file, "
                     "the wide format and id,message all have one)")
  twice = sorted({h for h in header if header.count(h) > 1})
  if twice:
    raise InputError(f"{where}:1: column(s) {', '.join(map(repr, twice))} named more than once; give each "
                     "column its own name (the output keeps every column)")
  clash = [h for h in header if h in predict.SCORED_COLUMNS]
  if clash:
    raise InputError(f"{where}:1: column(s) {', '.join(clash)} have the names of the answer columns and would be "
                     "overwritten; rename them (a file predict.py scored already: score the original instead)")


def read_rows(lines: Iterable[str], where: str, report: ScoreReport,
              text_column: str = predict.TEXT_COLUMN) -> Tuple[List[str], Iterator[Dict[str, str]]]:
  """(header, rows) of a CSV stream; each row that cannot be read is named in `report` and skipped.

  Unlike training's reader (`csv_files`, which refuses the whole file for one bad row, since a model must not
  learn from other data than named), this one skips and reports: an operator's file is scored as far as it can
  be, and the caller says that it was not whole.

  Raises:
    InputError: an empty file, a malformed header, or one `check_header` refuses.
  """
  records = _Records(lines).records()
  first = next(records, None)
  if first is None or first[1] == []:
    raise InputError(f"{where}: the file is empty; expected a header line with a {text_column!r} column")
  if first[2] is not None:
    raise InputError(f"{where}:{first[0]}: malformed CSV header ({first[2]})")
  header = [h.strip().lstrip("\ufeff") for h in first[1]]
  check_header(header, where, text_column)

  def rows() -> Iterator[Dict[str, str]]:
    first_row = True
    for number, row, error in records:
      if row == []:
        continue  # a blank line carries no record
      if first_row and error is None and hxl.is_hashtag_row(row):
        first_row = False
        continue  # HXL's hashtag row (a file written with --hxl, or by the sector's tools): not a message
      first_row = False
      report.rows += 1
      if error is not None:
        report.add_problem(f"{where}:{number}: malformed CSV ({error}); that row is skipped")
      elif len(row) != len(header):
        report.add_problem(f"{where}:{number}: expected {len(header)} fields, found {len(row)}; that row is skipped")
      else:
        yield dict(zip(header, row))
  return header, rows()


def check_job(input_path: str, output_path: str, text_column: str = predict.TEXT_COLUMN) -> None:
  """Checks a scoring job's files before any model loads: the input's header, the output's place.

  Raises:
    InputError: the input is missing or refused by `read_rows`; the output is a directory, in a missing
      directory, or the input itself.
    OSError: the input cannot be read.
  """
  if not os.path.isfile(input_path):
    raise InputError(f"--input={input_path}: " + ("a directory; expected a CSV file" if os.path.isdir(input_path)
                                                  else "no such file"))
  if os.path.isdir(output_path):
    raise InputError(f"--output={output_path}: a directory; expected a file name")
  out_dir = os.path.dirname(os.path.abspath(output_path))
  if not os.path.isdir(out_dir):
    raise InputError(f"--output={output_path}: no directory {out_dir}; create it first")
  if os.path.exists(output_path) and os.path.samefile(input_path, output_path):
    raise InputError(f"--output={output_path} is the input file; choose another name (the input is never "
                     "replaced: the rows that cannot be read would be lost)")
  with open(input_path, "rb") as f:  # an unreadable file: its OSError names it
    read_rows(checked_lines(f, input_path, ScoreReport()), input_path, ScoreReport(), text_column)


def score_csv(input_path: str, output_path: str, scorer: predict.Scorer, *, order: Sequence[str] = predict.URGENCY,
              text_column: str = predict.TEXT_COLUMN, batch_size: int = predict.BATCH,
              progress: Optional[Callable[[int], None]] = None,
              on_batch: Optional[Callable[[List[Tuple[Dict[str, str], Dict]]], None]] = None,
              explain: bool = False, english_only: bool = False, with_hxl: bool = False) -> ScoreReport:
  """Scores every readable row of `input_path` into `output_path` (written whole, then renamed into place).

  `on_batch` sees each batch of scored (row, result) pairs (`predict.score_rows`; predict.py --db queues them).
  With `explain` (a scorer whose results carry their `explanation`), the output's last column is
  `predict.EXPLANATION_COLUMN`. With `english_only` (the export reads English alone), a row its language gate
  calls another language is flagged (`predict.ranked`) and counted in the report. With `with_hxl`, HXL's
  hashtag row follows the header (data/hxl.py).

  Returns:
    What was read, scored and skipped: a report with `unreadable` > 0 means the output is not the whole input.

  Raises:
    InputError: refused by `check_job` (nothing is written).
    OSError: the input cannot be read or the output written (no temporary file is left).
  """
  check_job(input_path, output_path, text_column)
  report = ScoreReport()
  _remove_stale_temporaries(output_path)
  with open(input_path, "rb") as f, _replacing(output_path) as out:
    header, rows = read_rows(checked_lines(f, input_path, report), input_path, report, text_column)
    writer = csv.writer(out)
    extra = [predict.EXPLANATION_COLUMN] if explain else []
    columns = header + list(predict.SCORED_COLUMNS) + extra
    writer.writerow([neutralise(c) for c in columns])
    if with_hxl:
      writer.writerow(hxl.hashtags(columns))
    for row, result in predict.score_rows(rows, scorer, text_column, batch_size, on_batch):
      answer = predict.ranked(result, order, row[text_column], english_only)
      cells = predict.scored_values(answer) + ([predict.explanation_cell(answer)] if explain else [])
      writer.writerow([neutralise(c) for c in [row[h] for h in header] + cells])
      report.scored += 1
      report.not_english += answer["not_english"]
      if progress and report.scored % batch_size == 0:
        progress(report.scored)
  return report


def _temporary_prefix(output_path: str, pid: int) -> str:
  return os.path.join(os.path.dirname(os.path.abspath(output_path)), f".{os.path.basename(output_path)}.{pid}.")


@contextlib.contextmanager
def _replacing(output_path: str):
  """A text file that replaces `output_path` when the block ends normally, and is removed otherwise."""
  prefix = _temporary_prefix(output_path, os.getpid())
  fd, tmp = tempfile.mkstemp(prefix=os.path.basename(prefix), suffix=".tmp", dir=os.path.dirname(prefix))
  try:
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
      yield out
      out.flush()
      os.fsync(out.fileno())
    os.chmod(tmp, _mode_for(output_path))
    os.replace(tmp, output_path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(tmp)
    raise


def _mode_for(output_path: str) -> int:
  """The permission bits of the file being replaced, else what the umask gives a new file."""
  try:
    return os.stat(output_path).st_mode & 0o7777
  except FileNotFoundError:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _remove_stale_temporaries(output_path: str) -> None:
  """Removes the temporaries of earlier runs for `output_path` whose process is gone (killed with SIGKILL)."""
  directory, name = os.path.split(os.path.abspath(output_path))
  for path in glob.glob(os.path.join(glob.escape(directory), glob.escape(f".{name}.") + "*.tmp")):
    match = re.fullmatch(rf"\.{re.escape(name)}\.(\d+)\.[^/]*\.tmp", os.path.basename(path))
    if match and not _alive(int(match.group(1))):
      with contextlib.suppress(OSError):
        os.unlink(path)


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # another user's process
  return True
