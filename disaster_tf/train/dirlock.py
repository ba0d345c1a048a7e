"""One writer per model dir: an exclusive OS file lock held for the whole run, a shared one by its readers.

The lock is `flock(2)` on `<dir>/.lock`, so it dies with its process: a run
killed with SIGKILL or by a power cut never leaves a stale lock behind. The
file holds the writer's PID, which a refused run or export names. Training
holds it exclusively (`exclusive`); an export holds it shared (`shared`), so
that it never reads a model dir while a run writes it, and several exports
may read one at once.
"""

import contextlib
import fcntl
import os
from typing import Iterator

LOCK_FILE = ".lock"


class DirectoryInUse(OSError):
  """Another live process holds the directory's lock."""


@contextlib.contextmanager
def exclusive(directory: str) -> Iterator[None]:
  """Holds `directory`'s lock for the with-block, creating the directory if needed.

  On exit the lock file is removed, and so is the directory if this call
  created it and nothing else was written there (a refused first run leaves
  no trace).

  Raises:
    DirectoryInUse: another process holds the lock (at once: never waits).
    OSError: `directory` cannot be created or written (a file, read-only, ...).
  """
  created = not os.path.isdir(directory)
  fd = _acquire(directory)
  try:
    yield
  finally:
    # Unlink before unlocking, so that a process that opened this inode and
    # locks it after us sees that it is no longer the lock file (see _acquire).
    with contextlib.suppress(OSError):
      os.unlink(os.path.join(directory, LOCK_FILE))
    os.close(fd)
    if created:
      with contextlib.suppress(OSError):  # not empty: the run wrote its files
        os.rmdir(directory)


@contextlib.contextmanager
def shared(directory: str) -> Iterator[None]:
  """Holds `directory`'s lock shared for the with-block: no run writes it meanwhile, other readers may read.

  A directory that does not exist, or where no lock file can be made (read-only: no run can write there either),
  is read without a lock. The lock file is removed on exit if no one else holds it.

  Raises:
    DirectoryInUse: a run holds the lock (at once: never waits); names its PID.
  """
  if not os.path.isdir(directory):
    yield
    return
  try:
    fd = _acquire(directory, fcntl.LOCK_SH, "is being written by a run")
  except DirectoryInUse:
    raise
  except OSError:
    fd = None
  try:
    yield
  finally:
    if fd is not None:
      with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the last reader out removes the file (see `exclusive`)
        os.unlink(os.path.join(directory, LOCK_FILE))
      os.close(fd)


def _acquire(directory: str, mode: int = fcntl.LOCK_EX, busy: str = "is in use by another run") -> int:
  path = os.path.join(directory, LOCK_FILE)
  try:
    os.makedirs(directory, exist_ok=True)
    while True:
      fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
      except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown: an export reading it?"
        os.close(fd)
        raise DirectoryInUse(f"{directory} {busy} (process {holder}); wait for it to end or stop it, or use "
                             "another directory") from None
      try:
        if os.fstat(fd).st_ino == os.stat(path).st_ino:
          break  # still the lock file: ours
      except FileNotFoundError:
        pass  # its holder removed it as we opened it: take the new one
      os.close(fd)
    if mode == fcntl.LOCK_EX:  # the writer names itself; readers leave the file as it is
      os.ftruncate(fd, 0)
      os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    return fd
  except DirectoryInUse:
    raise
  except OSError as e:
    raise OSError(f"{directory}: cannot hold a run there ({e.strerror or e}); expected a writable "
                  "directory") from e
