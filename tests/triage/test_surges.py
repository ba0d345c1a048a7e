"""surges.py and GET /api/surges: a category well above its smoothed baseline is flagged, noise is not."""

import datetime
import json

from disaster_tf.data import decisions
from disaster_tf.triage import app as app_lib
from disaster_tf.triage import review
from disaster_tf.triage import surges
from tests import fixtures

NOW = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)


def arrivals(per_hour, last, category="water"):
  """`per_hour` messages of `category` in each of the 24 windows before the last, `last` in the last one."""
  seen = [(NOW - HOUR * (back + 0.5), [category]) for back in range(1, 25) for _ in range(per_hour)]
  return seen + [(NOW - HOUR * 0.5, [category])] * last


def verdict(seen, category="water"):
  return next(c for c in surges.count(seen, NOW, ["water", "food"]) if c.category == category)


def test_a_category_tripling_over_its_baseline_surges_and_its_usual_volume_does_not():
  water = verdict(arrivals(2, 7))
  assert water.surge and water.count == 7 and water.baseline == 2.0 and water.windows[:-1] == (2,) * 24
  assert not verdict(arrivals(2, 5)).surge  # 2.5x: a rise, not a surge
  assert not verdict(arrivals(20, 30)).surge  # a busy category on a busy hour
  assert verdict(arrivals(20, 60)).surge
  assert not verdict(arrivals(0, 4)).surge and verdict(arrivals(0, 5)).surge  # the minimum count, from nothing
  assert verdict(arrivals(2, 7), "food").count == 0


def test_the_baseline_weighs_the_last_hours_most_and_old_or_future_messages_are_not_counted():
  quiet_then_busy = [(NOW - HOUR * (back + 0.5), ["water"]) for back in range(1, 4) for _ in range(10)]
  assert not verdict(quiet_then_busy + [(NOW - HOUR * 0.5, ["water"])] * 12).surge  # busy for 3 hours already
  outside = [(NOW - HOUR * 26, ["water"])] * 50 + [(NOW + HOUR, ["water"])] * 50
  assert sum(verdict(outside).windows) == 0


def surging_store(path, monkeypatch):
  """A decisions file whose queue saw 2 water appeals an hour for a day, then 8 in the last 5 minutes."""
  store = decisions.Store(path)
  now = datetime.datetime.now(datetime.timezone.utc)
  messages = [(now - HOUR * (back + 0.5), f"we need water number {back} {k}") for back in range(1, 25)
              for k in ("a", "b")] + [(now - datetime.timedelta(minutes=5), f"water at camp {k}") for k in "abcdefgh"]
  for when, text in messages:
    monkeypatch.setattr(decisions, "now", lambda when=when: when.isoformat(timespec="seconds"))
    store.enqueue([(text, text, fixtures.keyword_scorer([text])[0])])
  monkeypatch.undo()
  return store


def test_the_page_reports_surges_over_what_it_has_seen(tmp_path, monkeypatch):
  store = surging_store(str(tmp_path / "d.db"), monkeypatch)
  app = app_lib.TriageApp(fixtures.keyword_scorer)
  app.decisions = review.DecisionsApi(store)
  server, url = fixtures.serve(app)
  try:
    status, _, body = fixtures.call(url + "/api/surges")
  finally:
    server.shutdown()
    server.server_close()
  answer = json.loads(body)
  assert status == 200 and answer["surges"] == ["water", "aid_related"] and "at least 5 messages" in answer["rule"]
  water = next(c for c in answer["categories"] if c["category"] == "water")
  assert water["count"] == 8 and water["windows"][:-1] == [2] * 24 and water["ratio"] == 4.0
  aid = next(c for c in answer["categories"] if c["category"] == "aid_related")  # every message: 2 an hour, 8 now
  assert aid["surge"] and "related" not in [c["category"] for c in answer["categories"]]
