"""The loop closed end to end: from N decisions saved on the page to the retrained version answering there.

  python bench/retrain.py                         # N = 100 and 1,000, the default configuration (~20 min, 2 cores)
  python bench/retrain.py --counts=20 --train_flagfile=configs/linear.flags --nowrite   # a quick look

Holds out the largest N of the training split's messages (a seeded draw) from the shared data, trains and
exports the default on the rest (version 1), then for each N: starts the page (`triage.py --retrain_every=N`,
a fresh decisions file), saves the first N held-out messages with their data labels through POST /api/decide,
as operators would, and polls GET /api/model until the page answers with the next version. Recorded: the wall
time from the Nth saved decision to that answer (the retrain's train.py and export.py within it), and the
validation Total of version 1 and of the retrained model (the same validation messages: the decisions are new
messages, which train). Writes BENCHMARKS.md's "retrain" section.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from typing import Dict, List, Sequence

import numpy as np
from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import active  # pylint: disable=wrong-import-position
from bench import common  # pylint: disable=wrong-import-position
from disaster_tf import labels  # pylint: disable=wrong-import-position
from disaster_tf import records  # pylint: disable=wrong-import-position
from disaster_tf.data import examples as examples_lib  # pylint: disable=wrong-import-position

POLL = 1.0  # seconds between /api/model polls: the page itself looks for a new version at most each second


def define_flags() -> None:
  flags.DEFINE_string("data", os.path.join(common.ROOT, "..", "shared", "data"), "The two-file data directory.")
  flags.DEFINE_string("train_flagfile", "configs/disaster_response.flags",
                      "The page's and the retrain's configuration.")
  flags.DEFINE_list("counts", ["100", "1000"], "N: the decisions that start a retrain, one experiment each.")
  flags.DEFINE_integer("seed", 42, "Which training messages are held out as the operators' new messages.")
  flags.DEFINE_string("out", "/tmp/disaster_retrain", "Scratch: data, model dirs, exports, decisions.")
  flags.DEFINE_integer("timeout", 3600, "Seconds to wait for one retrained version before giving up.")
  flags.DEFINE_bool("reuse_base", False, "Keep --out's data, version 1 and its model dir from an earlier run of "
                    "this script with the same settings (their training times are then not reported).")
  flags.DEFINE_string("note", "", "A sentence for the section (e.g. what else ran on the machine meanwhile).")
  flags.DEFINE_bool("write", True, "Write BENCHMARKS.md's section.")


def held_out(raw: active.Raw, count: int, seed: int) -> List[str]:
  """`count` training-side ids, drawn with `seed`: the messages operators will decide."""
  tc = common.config_from_flagfile(flags.FLAGS.train_flagfile).train
  side = examples_lib.split_ids(raw.ids, tc.validation_fraction, tc.tune_fraction, tc.split_seed)
  train_ids = [i for i, s in zip(raw.ids, side) if s == examples_lib.TRAIN]
  return np.random.default_rng(seed).choice(train_ids, count, replace=False).tolist()


def data_labels(raw: active.Raw, i: str) -> Dict[str, int]:
  """The labels of message `i` as the page sends them ({category: 0/1, related: 0/1/2}; repeated rows: max)."""
  return dict(zip(labels.CATEGORIES, active.label_values(raw.rows[labels.CATEGORIES_FILE][i]).tolist()))


def start_page(out: str, n: int, data_dir: str) -> subprocess.Popen:
  """triage.py on a free port with --retrain_every=N; returns the process, its URL as `.url`."""
  f = flags.FLAGS
  log = open(os.path.join(out, f"page-{n}.log"), "w", encoding="utf-8")  # pylint: disable=consider-using-with
  page = subprocess.Popen(  # pylint: disable=consider-using-with
      [sys.executable, "triage.py", f"--export_dir={os.path.join(out, 'models')}", f"--db={out}/decisions-{n}.db",
       "--port=0", f"--retrain_every={n}", f"--retrain_flagfile={f.train_flagfile}", f"--retrain_data={data_dir}",
       f"--retrain_dir={out}/retrain-{n}"], cwd=common.ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  for line in page.stdout:
    found = re.search(r"triage page on (http://\S+)/ ", line)
    if found:
      page.url = found.group(1)
      return page
  raise RuntimeError(f"the page did not start: see {out}/page-{n}.log")


def call(url: str, body=None) -> Dict:
  data = json.dumps(body).encode() if body is not None else None
  request = urllib.request.Request(url, data, {"Content-Type": "application/json"} if data else {})
  with urllib.request.urlopen(request, timeout=120) as response:
    return json.load(response)


def experiment(raw: active.Raw, ids: Sequence[str], data_dir: str, out: str) -> Dict:
  """One N: decisions saved through the page, then the wait for the version it retrains."""
  n = len(ids)
  page = start_page(out, n, data_dir)
  try:
    before = call(page.url + "/api/model")["about"]["export_version"]
    for i in ids:
      call(page.url + "/api/decide", {"message": raw.texts[i], "id": i, "labels": data_labels(raw, i),
                                      "replaces": None, "operator": "bench"})
    saved = time.time()
    while True:
      model = call(page.url + "/api/model")
      if model["about"]["export_version"] != before:
        break
      if model["retrain"]["state"] == "failed" or time.time() - saved > flags.FLAGS.timeout:
        raise RuntimeError(f"retrain of N={n}: {model['retrain']}")
      time.sleep(POLL)
    answered = time.time()
  finally:
    page.terminate()
    page.wait()
  with open(os.path.join(model["retrain"]["model_dir"], "metrics.json"), encoding="utf-8") as f:
    final = records.Scores.from_json(json.load(f)["final"])
  return {"n": n, "wall": answered - saved, "version": model["about"]["export_version"], "total": final.total,
          "mean_positive_f1": final.mean_positive_f1,
          "trained_on": model["report"]["training_data"]["decisions"]}


def main(argv):
  del argv
  f = flags.FLAGS
  counts = sorted(int(c) for c in f.counts)
  raw = active.Raw(f.data)
  new = held_out(raw, max(counts), f.seed)
  data_dir = os.path.join(f.out, "data")
  if f.reuse_base:
    with open(os.path.join(f.out, "base", "metrics.json"), encoding="utf-8") as fh:
      body, train_wall, export_wall = json.load(fh), None, None
    for name in os.listdir(f.out):
      if name.startswith(("decisions-", "retrain-", "page-")):
        shutil.rmtree(os.path.join(f.out, name)) if os.path.isdir(os.path.join(f.out, name)) else os.remove(
            os.path.join(f.out, name))
  else:
    shutil.rmtree(f.out, ignore_errors=True)
    os.makedirs(f.out)
    taken = set(new)
    raw.write([i for i in raw.ids if i not in taken], data_dir)
    body, train_wall = common.run_train("base", f.train_flagfile, [], data_dir, f.out)
    export_wall = common.run_export(os.path.join(f.out, "base"), os.path.join(f.out, "models"))
  base = records.Scores.from_json(body["final"])
  rows = []
  for n in counts:
    for version in os.listdir(os.path.join(f.out, "models")):
      if version != "1":
        shutil.rmtree(os.path.join(f.out, "models", version))  # each N retrains from version 1
    rows.append(experiment(raw, new[:n], data_dir, f.out))
    print(json.dumps(rows[-1]), flush=True)
  text = report(rows, base, train_wall, export_wall)
  print(text)
  if f.write:
    common.write_section("retrain", "The loop closed: N decisions to a new version on the page", text)


def report(rows: Sequence[Dict], base: records.Scores, train_wall: float, export_wall: float) -> str:
  lines = [f"Configuration `{flags.FLAGS.train_flagfile}`; version 1 trained on the shared data less "
           f"{max(r['n'] for r in rows)} training messages held out as the operators' new ones "
           + (f"(train.py {train_wall:.0f} s, export.py {export_wall:.0f} s), " if train_wall else
              "(reused from an earlier run, --reuse_base), ") + f"validation Total {base.total:.2f}, "
           f"mean positive F1 {base.mean_positive_f1:.3f}.", "",
           "| N decisions | saved to answering (s) | decisions trained on | version | validation Total | "
           "- version 1 | mean pos. F1 |", "| --- | --- | --- | --- | --- | --- | --- |"]
  for r in rows:
    lines.append(f"| {r['n']:,} | {r['wall']:.0f} | {r['trained_on']:,} | {r['version']} | {r['total']:.2f} | "
                 f"{r['total'] - base.total:+.2f} | {r['mean_positive_f1']:.3f} |")
  lines += ["", "The wall time is the page's own: it counted the decisions, ran train.py and export.py as child "
            "processes and served the new version. The default's seed-to-seed spread of validation Total is 0.13 "
            "(BENCHMARKS.md, \"Quality on held-out messages\"). " + flags.FLAGS.note]
  return "\n".join(lines)


if __name__ == "__main__":
  define_flags()
  app.run(main)
