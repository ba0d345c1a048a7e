"""Stopping a run cleanly: signals become a flag."""

import signal

import pytest

from disaster_tf.train import stops


def test_a_stop_request_is_a_flag_and_a_second_one_stops_the_hard_way():
  with stops.StopRequests() as stop:
    assert stop.requested is None
    signal.raise_signal(signal.SIGTERM)
    assert stop.requested == "SIGTERM"
    with pytest.raises(KeyboardInterrupt):
      signal.raise_signal(signal.SIGTERM)
  assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the previous handler is back
