"""One writer per directory: the lock, its PID, and what it leaves behind."""

import os

import pytest

from disaster_tf.train import dirlock


def test_the_lock_names_its_holder_and_is_released_on_exit(tmp_path):
  with dirlock.exclusive(str(tmp_path)):
    assert (tmp_path / dirlock.LOCK_FILE).read_text() == f"{os.getpid()}\n"
    with pytest.raises(dirlock.DirectoryInUse, match=rf"in use by another run \(process {os.getpid()}\)"):
      with dirlock.exclusive(str(tmp_path)):
        pass
  assert not (tmp_path / dirlock.LOCK_FILE).exists()
  with dirlock.exclusive(str(tmp_path)):  # free again
    pass
  assert tmp_path.is_dir()  # it existed before: kept


def test_a_lock_file_left_by_a_killed_process_does_not_block(tmp_path):
  (tmp_path / dirlock.LOCK_FILE).write_text("999999999\n")  # the file survives a SIGKILL; the flock does not
  with dirlock.exclusive(str(tmp_path)):
    assert (tmp_path / dirlock.LOCK_FILE).read_text() == f"{os.getpid()}\n"


def test_a_directory_it_created_goes_again_unless_something_was_written(tmp_path):
  with dirlock.exclusive(str(tmp_path / "refused")):
    pass
  assert not (tmp_path / "refused").exists()
  with dirlock.exclusive(str(tmp_path / "used")):
    (tmp_path / "used" / "config.json").write_text("{}")
  assert sorted(os.listdir(tmp_path / "used")) == ["config.json"]
