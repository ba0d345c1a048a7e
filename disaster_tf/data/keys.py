"""A message's identity in the decisions file: the id its file gave it and its text's hash (`message_key`)."""

import hashlib
from typing import Dict, Mapping, Optional

HASHED = "sha256:"  # a message key's text part: the first 16 hex digits of the text's SHA-256
KEY_SEPARATOR = "|"  # between the id a file gave a message and its text's hash, in a message key


def message_key(given: Optional[str], text: str) -> str:
  """A message's identity: the id its file gave it (spaces around it dropped) and the hash of its text.

  The same text without an id always has the same key; the same id with another text is another message.
  A key already made is returned as it is.
  """
  given = (given or "").strip()
  if given.startswith(HASHED) or f"{KEY_SEPARATOR}{HASHED}" in given:
    return given
  digest = HASHED + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
  return f"{given}{KEY_SEPARATOR}{digest}" if given else digest


def id_of(key: str) -> Optional[str]:
  """The id a file gave the message of `key`, or None for a message without one."""
  given, separator, _ = key.rpartition(f"{KEY_SEPARATOR}{HASHED}")
  return given if separator else None


def row_message_id(row: Mapping[str, str]) -> str:
  """The message key of a scored CSV row (its `message`, and its `id` column if it has one)."""
  return message_key(row.get("id"), row.get("message", ""))


def message_row(key: str, text: str) -> Dict[str, str]:
  """The row `row_message_id` maps to `key` (an `id` column only if the message had one)."""
  given = id_of(key)
  return {"message": text, **({"id": given} if given is not None else {})}
