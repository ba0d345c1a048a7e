"""A shift on one page: 20 and 100 simulated operators claiming, deciding and polling against one page process.

  python bench/team.py                                 # 20 and 100 operators, 2 minutes each, both servers
  python bench/team.py --operators=5 --seconds=10 --nowrite                          # a quick look

For each server (server.make_server's "stdlib", the page's server before: one thread per connection, and
"waitress") and each number of operators: a fresh decisions file is filled with the first --queue training
messages of the shared data (their text only), and a page process is started on it (this script with --serve:
TriageApp with a stand-in scorer that costs nothing, so the numbers are the server's, the claims' and SQLite's,
not the model's). Each simulated operator, in its own thread and on its own connections, loops for --seconds:
POST /api/claim {"next": "urgent"}, POST /api/decide of that message (labels: its claim's order), and every
--poll_every-th turn GET /api/queue?limit=50, as the Review tab does. Recorded per endpoint: p50 and p99 in
milliseconds, requests and errors (any answer but 200, or none). At the end, every decision a client was told
was saved (its decision_id) is looked up in the file: nothing lost, nothing doubled, and no message decided
by two operators (the claims' promise). Writes BENCHMARKS.md's "team" section.
"""

import collections
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from typing import Dict, List, Sequence

import numpy as np
from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import common  # pylint: disable=wrong-import-position
from disaster_tf import labels  # pylint: disable=wrong-import-position

ENDPOINTS = ("/api/claim", "/api/decide", "/api/queue")


def define_flags() -> None:
  flags.DEFINE_string("data", os.path.join(common.ROOT, "..", "shared", "data"), "The two-file data directory.")
  flags.DEFINE_string("out", "/tmp/bench_team", "Where the decisions files go.")
  flags.DEFINE_list("operators", ["20", "100"], "Numbers of simulated operators, one run each per server.")
  flags.DEFINE_list("servers", ["stdlib", "waitress"], "server.make_server kinds to measure.")
  flags.DEFINE_integer("seconds", 120, "How long each run's operators work.")
  flags.DEFINE_integer("queue", 5000, "Messages in the queue at the start (more than a run decides).")
  flags.DEFINE_integer("poll_every", 3, "An operator reloads the queue every this many turns.")
  flags.DEFINE_bool("write", True, "Write BENCHMARKS.md's section.")
  flags.DEFINE_string("serve", None, "Internal: serve this decisions file (the page process), with --server_kind.")
  flags.DEFINE_string("server_kind", "waitress", "Internal: the page process's server.")


def stand_in(texts: Sequence[str]) -> List[Dict]:
  """Scores from each text's hash: the same answer for the same text, no model time."""
  from disaster_tf.serve import client  # pylint: disable=import-outside-toplevel
  out = []
  for t in texts:
    rng = np.random.default_rng(zlib.crc32(t.encode("utf-8", "surrogatepass")))
    scores = rng.random(labels.NUM_CATEGORIES).tolist()
    out.append(client.result_row(scores, [int(s >= 0.5) for s in scores], labels.CATEGORIES))
  return out


def serve(db: str, kind: str) -> None:
  """The page process: a TriageApp over `db`, on a free loopback port it prints."""
  from disaster_tf.data import decisions  # pylint: disable=import-outside-toplevel
  from disaster_tf.triage import app as app_lib  # pylint: disable=import-outside-toplevel
  from disaster_tf.triage import review  # pylint: disable=import-outside-toplevel
  from disaster_tf.triage import server as server_lib  # pylint: disable=import-outside-toplevel
  page = app_lib.TriageApp(stand_in)
  page.decisions = review.DecisionsApi(decisions.Store(db))
  server = server_lib.make_server(page, port=0, kind=kind)
  print(f"PORT {server.server_address[1]}", flush=True)
  server.serve_forever()


def fill(db: str, data_dir: str, count: int) -> None:
  """A fresh decisions file whose queue holds the first `count` messages of the data (text only)."""
  import csv  # pylint: disable=import-outside-toplevel
  from disaster_tf.data import decisions  # pylint: disable=import-outside-toplevel
  from disaster_tf.data import keys  # pylint: disable=import-outside-toplevel
  if os.path.exists(db):
    os.remove(db)
  with open(os.path.join(data_dir, labels.MESSAGES_FILE), encoding="utf-8", newline="") as f:
    rows = [r for _, r in zip(range(count), csv.DictReader(f))]
  texts = [r["message"] for r in rows]
  decisions.Store(db).enqueue([(keys.message_key(r["id"], t), t, s) for r, t, s in zip(rows, texts, stand_in(texts))])


def call(url: str, body=None):
  """(status, answer or None, milliseconds) of one request on its own connection."""
  data = json.dumps(body).encode() if body is not None else None
  request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
  start = time.perf_counter()
  try:
    with urllib.request.urlopen(request, timeout=60) as response:
      answer, status = json.loads(response.read()), response.status
  except urllib.error.HTTPError as e:
    answer, status = None, e.code
  except OSError:  # refused, reset, or no answer within the timeout
    answer, status = None, 0
  return status, answer, 1000 * (time.perf_counter() - start)


def operator(url: str, name: str, until: float, poll_every: int, log: Dict) -> None:
  """One simulated operator's loop; appends (endpoint, status, ms) to log["calls"], saved ids to log["saved"]."""
  turn = 0
  labels_of = {c: 0 for c in labels.CATEGORIES}
  while time.time() < until:
    turn += 1
    if turn % poll_every == 0:
      status, _, ms = call(url + "/api/queue?order=urgent&limit=50")
      log["calls"].append(("/api/queue", status, ms))
    status, answer, ms = call(url + "/api/claim", {"next": "urgent", "operator": name})
    log["calls"].append(("/api/claim", status, ms))
    if status != 200 or not answer["claim"]:
      continue
    result = answer["result"]
    body = {"message": result["row"]["message"], "id": result["row"].get("id"), "replaces": None,
            "operator": name, "labels": dict(labels_of, related=1)}
    status, answer, ms = call(url + "/api/decide", body)
    log["calls"].append(("/api/decide", status, ms))
    if status == 200:
      log["saved"].append((answer["decision"]["decision_id"], answer["decision"]["message_id"], name))


def run(kind: str, count: int, f) -> Dict:
  """One server, `count` operators, f.seconds: the latencies, the errors and the nothing-lost check."""
  db = os.path.join(f.out, f"{kind}-{count}.db")
  fill(db, f.data, f.queue)
  page = subprocess.Popen([sys.executable, __file__, f"--serve={db}", f"--server_kind={kind}"],
                          stdout=subprocess.PIPE, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  try:
    port = int(page.stdout.readline().split()[1])
    url = f"http://127.0.0.1:{port}"
    logs = [{"calls": [], "saved": []} for _ in range(count)]
    until = time.time() + f.seconds
    threads = [threading.Thread(target=operator, args=(url, f"op{i}", until, f.poll_every, logs[i]))
               for i in range(count)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
  finally:
    page.terminate()
    page.wait(30)
  return summary(kind, count, db, logs, f.seconds)


def summary(kind: str, count: int, db: str, logs: Sequence[Dict], seconds: int) -> Dict:
  calls = [c for log in logs for c in log["calls"]]
  saved = [s for log in logs for s in log["saved"]]
  with sqlite3.connect(db) as connection:
    stored = dict(connection.execute("SELECT decision_id, message_id FROM decisions").fetchall())
    per_message = connection.execute("SELECT COUNT(*) FROM (SELECT message_id FROM decisions GROUP BY message_id "
                                     "HAVING COUNT(DISTINCT operator) > 1)").fetchone()[0]
  ids = [s[0] for s in saved]
  row = {"server": kind, "operators": count, "seconds": seconds, "decisions": len(saved),
         "lost": sum(1 for i, key, _ in saved if stored.get(i) != key), "doubled": len(ids) - len(set(ids)),
         "unreported": len(stored) - len(set(ids)), "two_operators": per_message}
  for endpoint in ENDPOINTS:
    ms = np.array([c[2] for c in calls if c[0] == endpoint])
    errors = collections.Counter(str(c[1]) for c in calls if c[0] == endpoint and c[1] != 200)
    row[endpoint] = {"requests": int(ms.size), "errors": sum(errors.values()), "by_status": dict(errors),
                     "p50": float(np.percentile(ms, 50)) if ms.size else None,
                     "p99": float(np.percentile(ms, 99)) if ms.size else None}
  print(json.dumps(row), flush=True)
  return row


def _errors(row: Dict) -> str:
  """How many errors, by status (0: no answer: refused, reset or timed out)."""
  return str(row["errors"]) + (f": {', '.join(f'{k} x{v}' for k, v in sorted(row['by_status'].items()))}"
                               if row["errors"] else "")


def report(rows: Sequence[Dict], f) -> str:
  head = ("| server | operators | decisions saved | per second | " +
          " | ".join(f"{e} p50 / p99 ms (requests, errors)" for e in ENDPOINTS) +
          " | lost | doubled | in the file, never reported | decided by two |\n|" + "---|" * (8 + len(ENDPOINTS)))
  lines = []
  for r in rows:
    cells = [f"{r[e]['p50']:.0f} / {r[e]['p99']:.0f} ({r[e]['requests']}, {_errors(r[e])})" if r[e]["requests"]
             else "-" for e in ENDPOINTS]
    lines.append(f"| {r['server']} | {r['operators']} | {r['decisions']} | {r['decisions'] / r['seconds']:.1f} | " +
                 " | ".join(cells) + f" | {r['lost']} | {r['doubled']} | {r['unreported']} | {r['two_operators']} |")
  return (f"{f.seconds} s a run; the queue starts with {f.queue} training messages (text only); each operator "
          f"claims the next urgent message, decides it, and reloads the queue (50 rows) every {f.poll_every} turns, "
          "each request on its own connection, with no pause between turns: a stress far above a real shift's "
          "rate (an operator reads a message for tens of seconds: 100 operators at 30 s a message make 3.3 "
          "decisions a second). The page scores with a stand-in that costs nothing (the model is not measured "
          "here: bench/speed.py measures it). Clients and page share this machine's cores, so the page's "
          "throughput is the measure; a latency includes the wait for a core.\n\n"
          + head + "\n" + "\n".join(lines) + "\n\n" +
          "lost: a decision a client was told was saved (its decision_id) that the file does not hold as that "
          "message's; doubled: a decision_id reported twice; in the file, never reported: a save whose answer was "
          "lost (an error on the way back); decided by two: a message with decisions by two operators, which the "
          "claims must prevent.\n")


def main(argv):
  del argv
  f = flags.FLAGS
  if f.serve:
    return serve(f.serve, f.server_kind)
  os.makedirs(f.out, exist_ok=True)
  rows = [run(kind, int(count), f) for count in f.operators for kind in f.servers]
  if f.write:
    common.write_section("team", "A shift on one page: claims, decisions and polls under load", report(rows, f))
  return None


if __name__ == "__main__":
  define_flags()
  app.run(main)
