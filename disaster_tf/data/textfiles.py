"""What every text file a user brings must be (UTF-8), and a sentence naming what it is instead.

Spreadsheets save "Unicode text" as UTF-16 and older ones save Windows-1252:
read as UTF-8, the first looks empty and the second breaks mid-file. Both
readers of users' files (`csv_files` for training, `scorefile` for scoring)
ask `encoding_problem` about a file's first line before reading it.
"""

from typing import Optional

# Byte-order marks of encodings that are not UTF-8, longest first (UTF-32 LE begins like UTF-16 LE).
_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32 LE"), (b"\x00\x00\xfe\xff", "UTF-32 BE"), (b"\xff\xfe", "UTF-16 LE"),
         (b"\xfe\xff", "UTF-16 BE"))
SAVE_AS = 'save it as "CSV UTF-8"'


def encoding_problem(start: bytes) -> Optional[str]:
  """What is wrong with a file whose first line is `start`, or None if it may be UTF-8."""
  for bom, name in _BOMS:
    if start.startswith(bom):
      return f"the file is {name} (its byte-order mark says so), not UTF-8; {SAVE_AS}"
  if b"\x00" in start[:200]:
    return f"the file holds NUL bytes, as UTF-16 text does, not UTF-8; {SAVE_AS}"
  try:
    start.decode("utf-8")
  except UnicodeDecodeError as e:
    return f"byte {e.start + 1} of the first line is not valid UTF-8 (Windows-1252 or Latin-1?); {SAVE_AS}"
  return None
