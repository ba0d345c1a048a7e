"""Generated data in both CSV formats, and tiny configs. No real data is used."""

import csv
import json
import os
import random
import urllib.error
import urllib.request
from typing import Dict, List, Sequence

from disaster_tf import config as config_lib
from disaster_tf import labels
from disaster_tf.serve import client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout: its scripts, configs, serving/

# Each keyword makes its categories positive: a signal a tiny model can learn.
KEYWORDS = {
    "water": ("related", "request", "aid_related", "water"),
    "food": ("related", "request", "aid_related", "food"),
    "fire": ("related", "weather_related", "fire"),
    "flood": ("related", "weather_related", "floods"),
    "quake": ("related", "weather_related", "earthquake"),
}
FILLER = ("please", "help", "village", "road", "today", "people", "family", "send", "north", "town")
# The same words in Haitian Creole, as SMS write them: the `original` of a translated message.
CREOLE = {"water": "dlo", "food": "manje", "fire": "dife", "flood": "inondasyon", "quake": "tranblemanntè",
          "please": "tanpri", "help": "ede", "village": "bouk", "road": "wout", "today": "jodi a", "people": "moun",
          "family": "fanmi", "send": "voye", "north": "nò", "town": "vil"}


def synthetic_rows(n: int, seed: int = 0) -> List[Dict]:
  """n rows {id, message, labels: {category: int}} with learnable labels."""
  rng = random.Random(seed)
  rows = []
  for i in range(n):
    keyword = rng.choice(list(KEYWORDS) + [None])
    words = rng.sample(FILLER, 4) + ([keyword] if keyword else [])
    rng.shuffle(words)
    row_labels = {c: 0 for c in labels.CATEGORIES}
    for c in KEYWORDS.get(keyword, ()):
      row_labels[c] = 1
    if keyword is None and i % 7 == 0:
      row_labels["related"] = 2
    rows.append({"id": str(1000 + i), "message": "We " + " ".join(words) + "!", "labels": row_labels,
                 "original": "Nou " + " ".join(CREOLE[w] for w in words) + "!"})
  return rows


def categories_cell(row_labels: Dict[str, int]) -> str:
  return labels.categories_cell([row_labels[c] for c in labels.CATEGORIES])


def write_two_file(directory, rows: Sequence[Dict], originals: bool = False) -> None:
  """Writes the two files; `original` holds each row's Creole text if `originals`, else it is empty."""
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, "disaster_messages.csv"), "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["id", "message", "original", "genre"])
    for r in rows:
      w.writerow([r["id"], r["message"], r.get("original", "") if originals else "", "direct"])
  with open(os.path.join(directory, "disaster_categories.csv"), "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["id", "categories"])
    for r in rows:
      w.writerow([r["id"], categories_cell(r["labels"])])


def write_wide(path, rows: Sequence[Dict], extra_columns=("split", "PII", "genre")) -> None:
  # The public release puts PII between related and request; keep that quirk.
  header = ["id"] + list(extra_columns[:1]) + ["message"] + list(labels.CATEGORIES) + list(extra_columns[1:])
  with open(path, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(header)
    for r in rows:
      extra = {"split": "validation", "PII": "0", "genre": "direct"}
      values = {**extra, "id": r["id"], "message": r["message"], "original": r.get("original", ""),
                **{c: str(v) for c, v in r["labels"].items()}}
      w.writerow([values.get(h, "x") for h in header])


def tiny_config(data_path: str, architecture: str = "ensemble", **train_overrides) -> config_lib.Config:
  """A model small enough to train in a few seconds on two CPU cores."""
  # The default architecture (the ensemble); its linear part at 5x the tiny models' high rate, not 30x.
  model = config_lib.ModelConfig(architecture=architecture, max_tokens=64, sequence_length=8, embedding_dim=8,
                                 conv_filters=8, conv_kernel_size=3, pool_size=2, rnn_units=8, dropout=0.0,
                                 linear_lr_multiplier=5.0)
  train = dict(data=data_path, validation_fraction=0.25, batch_size=16, epochs=3, learning_rate=0.02,
               lr_schedule="constant", class_weight="balanced", log_every=2, patience=0)
  train.update(train_overrides)
  return config_lib.Config(model=model, train=config_lib.TrainConfig(**train))


# --- stand-ins and files shared by the serving and triage tests ---------------------------------------------


CREOLE_MARKS = ("nou ", "dlo", "bezwen", "manje")  # what keyword_scorer's stand-in gate calls another language


def keyword_scorer(texts):
  """A stand-in model: water if the text says so, search_and_rescue for "trapped", aid_related always; its
  language gate calls a text with a Creole word (CREOLE_MARKS) `other`."""
  results = []
  for t in texts:
    scores = [0.1] * labels.NUM_CATEGORIES
    for word, category in (("water", "water"), ("trapped", "search_and_rescue")):
      if word in t.lower():
        scores[labels.CATEGORIES.index(category)] = 0.9
    scores[labels.CATEGORIES.index("aid_related")] = 0.8
    decided = [int(s >= 0.5) for s in scores]
    creole = any(mark in t.lower() for mark in CREOLE_MARKS)
    results.append(client.result_row(scores, decided, labels.CATEGORIES, language="other" if creole else "english",
                                     language_score=0.9 if creole else 0.1))
  return results


def write_csv(path, text):
  path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
  return str(path)


def read_csv(path):
  with open(path, encoding="utf-8", newline="") as f:
    return list(csv.DictReader(f))


def serve(app, kind="waitress"):
  """A triage server of `app` (server.make_server's `kind`) on a free loopback port, in a thread: (server, url)."""
  from disaster_tf.triage import server as server_lib  # pylint: disable=import-outside-toplevel
  server = server_lib.make_server(app, port=0, kind=kind)
  server_lib.serve_in_thread(server)
  return server, f"http://127.0.0.1:{server.server_address[1]}"


def call(url, data=None, content_type="application/json"):
  """(status, headers, body bytes) of a GET, or of a POST of `data`."""
  request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type} if data is not None else {})
  try:
    with urllib.request.urlopen(request, timeout=30) as response:
      return response.status, response.headers, response.read()
  except urllib.error.HTTPError as e:
    return e.code, e.headers, e.read()


def ndjson(body):
  return [json.loads(line) for line in body.decode("utf-8").splitlines()]
