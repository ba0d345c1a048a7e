"""Speed: the custom loop vs. Keras model.fit, float32 vs. bfloat16, the SavedModel, and time to a model.

  python bench/speed.py [--data=../shared/data] [--steps=150] [--calls=500]

One run, on the shared data, one configuration at a time, each in its own
worker process (so that each peak RSS is its own):

* training throughput (examples/s over --steps after a warm-up) for the
  default configuration and the article's setup: disaster_tf's loop
  (steps_per_execution 1 and 16, XLA off and on, vectorised data cached or
  not) against `model.fit` on the identical model, losses and per-head sample
  weights (built here), with XLA off and on;
  Each in float32 and mixed_bfloat16 (--precision), with a per-part profile
  of a step in both;
* serving: the exported SavedModel called in-process on raw strings
  (single-message latency p50 / p99 over --calls calls; throughput at batch 1,
  32, 256), exported in float32 and in bfloat16, for the default and the
  multi_cnn configurations; for multi_cnn (token ids only) also the article's
  way: Python-side cleaning and tokenisation, then the Keras model on integer
  ids with `model.predict`, and a direct call of the Keras model;
* time to a trained model: README's main job (train + export, whole
  processes) in float32 and mixed_bfloat16, with each run's validation Total,
  against the scikit-learn reference's fit (needs .[bench]).

Ratios (disaster_tf / baseline) are what count; the machine is noisy.
"""

import atexit
import dataclasses
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py)

CONFIGS = {"default": "configs/disaster_response.flags", "article": "configs/seed_article.flags",
           "multi_cnn": "configs/multi_cnn.flags", "pretrained": "configs/pretrained.flags"}
TRAINED = ("default", "article")  # the configurations whose training is timed (--train_configs)
# The pretrained configuration's third member alone, as it trains in <model_dir>/encoder (members.encoder_config).
ENCODER_MEMBER = "encoder_member"
# (name, kind, steps_per_execution, jit, cache, precision)
TRAIN_VARIANTS = (
    ("loop", "custom", 1, False, True, "float32"),
    ("loop spe=16", "custom", 16, False, True, "float32"),
    ("loop bf16", "custom", 1, False, True, "mixed_bfloat16"),
    ("loop spe=16 bf16", "custom", 16, False, True, "mixed_bfloat16"),
    ("loop XLA", "custom", 1, True, True, "float32"),
    ("loop uncached", "custom", 1, False, False, "float32"),
    ("fit", "fit", 1, False, True, "float32"),
    ("fit bf16", "fit", 1, False, True, "mixed_bfloat16"),
    ("fit XLA", "fit", 1, True, True, "float32"),
    ("loop spe=16 Keras Adam", "custom", 16, False, True, "float32"),
)
# Variants that train with another optimizer than their flagfile's: Keras' own Adam, unfused, against the
# fused kernel that --optimizer=adam runs (optimizers.FusedAdam): the same update, so only the time differs.
OPTIMIZER_OF = {"loop spe=16 Keras Adam": "keras_adam"}


def define_flags():
  flags.DEFINE_string("data", "../shared/data", "Data to read.")
  flags.DEFINE_integer("steps", 150, "Timed training steps per variant.")
  flags.DEFINE_integer("warmup", 20, "Untimed steps first (tracing, compilation).")
  flags.DEFINE_integer("calls", 500, "Single-message serving calls timed.")
  flags.DEFINE_list("parts", ["training", "serving", "time"], "What to measure: training, serving, time (to a model).")
  flags.DEFINE_list("serve_configs", ["default", "multi_cnn", "pretrained"], "The configurations served (--parts "
                    "serving); multi_cnn's run also times the article's Python serving.")
  flags.DEFINE_list("train_configs", list(TRAINED), f"The configurations whose training is timed (--parts training); "
                    f"{ENCODER_MEMBER}: the pretrained configuration's encoder member as it fine-tunes.")
  flags.DEFINE_list("variants", [], "Only these training variants (TRAIN_VARIANTS' names; default: all).")
  flags.DEFINE_list("trained", [], "config:model_dir pairs: serve that trained model dir's export instead of random "
                    "weights (a three-member configuration exports only from a finished run).")
  flags.DEFINE_string("section", "speed", "The BENCHMARKS.md section to (re)write; another name keeps the last full "
                      "run's.")
  flags.DEFINE_string("worker", None, "Internal: run one measurement (train:CONFIG:VARIANT or serve:CONFIG).")


def peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- worker: training ------------------------------------------------------------------


def prepare(config):
  """The loop's own first phase (`inputs.prepare`) in a scratch dir removed at exit, as train.py has."""
  from disaster_tf.train import inputs  # pylint: disable=import-outside-toplevel
  scratch = tempfile.mkdtemp(prefix="bench-speed-")
  atexit.register(shutil.rmtree, scratch, True)
  return inputs.prepare(config, scratch)


def build_trainer(config, run, **train_overrides):
  """The loop's own model, optimizer and compiled steps (`trainer.build_trainer`), seeded as the loop seeds them."""
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf.train import trainer as trainer_lib  # pylint: disable=import-outside-toplevel
  config = dataclasses.replace(config, train=dataclasses.replace(config.train, **train_overrides))
  keras.utils.set_random_seed(config.train.seed)
  save_dir = tempfile.mkdtemp(prefix="bench-speed-ckpt-")  # never written: nothing is saved
  atexit.register(shutil.rmtree, save_dir, True)
  return trainer_lib.build_trainer(config, run, tf.distribute.get_strategy(), save_dir)


def train_worker(config, variant, steps, warmup):
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf import labels  # pylint: disable=import-outside-toplevel
  from disaster_tf.data import examples as examples_lib  # pylint: disable=import-outside-toplevel
  from disaster_tf.model import features  # pylint: disable=import-outside-toplevel
  from disaster_tf.model import networks  # pylint: disable=import-outside-toplevel
  from disaster_tf.train import trainer as trainer_lib  # pylint: disable=import-outside-toplevel
  _, kind, spe, jit, cache, precision = next(v for v in TRAIN_VARIANTS if v[0] == variant)
  tc = config.train
  run = prepare(config)  # vectorises and fills the training caches, as train.py does before its first epoch
  blocks = (run.train_blocks if cache
            else [examples_lib.vectorized_dataset(run.splits.train, run.featurizer, cache=None)])
  ds = examples_lib.batched(blocks, tc.batch_size, shuffle_seed=tc.seed, shuffle_buffer=tc.shuffle_buffer).repeat()
  if kind == "custom":
    train_steps = build_trainer(config, run, jit_compile=jit, precision=precision,
                                optimizer=OPTIMIZER_OF.get(variant, tc.optimizer)).train_steps
    iterator = iter(ds)

    def run_steps(n):
      done = 0
      while done < n:
        k = min(spe, n - done)
        float(train_steps(iterator, tf.constant(k))[0])  # wait for the result, as the loop does
        done += k
  else:
    keras.utils.set_random_seed(tc.seed)
    model = networks.build_model(config.model, run.featurizer.sizes, precision, run.vocabularies.get(features.ENCODER))
    cw = tf.constant(run.class_weights)

    def to_fit(x, y):  # per-output labels and per-output sample weights: the same objective
      targets, weights = {}, {}
      for k, name in enumerate(labels.CATEGORIES):
        targets[name] = y[:, k] if name == labels.RELATED else tf.cast(y[:, k:k + 1], tf.float32)
        weights[name] = tf.gather(cw[k], y[:, k])
      return x, targets, weights
    fit_ds = ds.map(to_fit, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    model.compile(optimizer=trainer_lib.make_optimizer(tc, run.steps_per_epoch),
                  loss={n: keras.losses.SparseCategoricalCrossentropy(from_logits=True) if n == labels.RELATED
                        else keras.losses.BinaryCrossentropy(from_logits=True) for n in labels.CATEGORIES},
                  loss_weights=dict(zip(labels.CATEGORIES, run.loss_weights.tolist())), jit_compile=jit)

    def run_steps(n):
      model.fit(fit_ds, steps_per_epoch=n, epochs=1, verbose=0)
  run_steps(warmup)
  start = time.perf_counter()
  run_steps(steps)
  seconds = time.perf_counter() - start
  return {"examples_per_s": steps * tc.batch_size / seconds, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def profile_worker(config, steps, warmup, precision="float32"):
  """Times the parts of a training step separately: input, forward, backward, optimizer update."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf.data import examples as examples_lib  # pylint: disable=import-outside-toplevel
  from disaster_tf.model import losses  # pylint: disable=import-outside-toplevel
  tc = config.train
  run = prepare(config)
  trainer = build_trainer(config, run, precision=precision)
  model = trainer.model
  cw, lw = tf.constant(run.class_weights), tf.constant(run.loss_weights)
  ds = examples_lib.batched(run.train_blocks, tc.batch_size, shuffle_seed=tc.seed,
                            shuffle_buffer=tc.shuffle_buffer).repeat()
  batches = list(ds.take(16))  # in memory: the parts below exclude the input pipeline
  in_memory = iter(ds.take(16).cache().repeat())

  @tf.function
  def forward(x, y):
    return losses.combined_loss(y, model(x, training=True), cw, lw, tc.batch_size)[0]

  @tf.function
  def forward_backward(x, y):
    with tf.GradientTape() as tape:
      loss = losses.combined_loss(y, model(x, training=True), cw, lw, tc.batch_size)[0]
    return tape.gradient(loss, model.trainable_variables)

  iterator = iter(ds)
  one = tf.constant(1)
  parts = {
      "input pipeline (cached, shuffled, batched)": lambda i: next(iterator)[1].numpy(),
      "forward + loss": lambda i: forward(*batches[i % 16]).numpy(),
      "forward + loss + backward": lambda i: forward_backward(*batches[i % 16])[-1].numpy(),  # a head bias: dense
      "whole step (the loop's compiled step, with optimizer update)": lambda i: trainer.train_steps(in_memory,
                                                                                                   one)[0].numpy(),
  }
  result = {}
  for name, fn in parts.items():
    for i in range(warmup):
      fn(i)
    start = time.perf_counter()
    for i in range(steps):
      fn(i)
    result[name] = (time.perf_counter() - start) * 1000 / steps
  return {"ms_per_step": result, "batch_size": tc.batch_size, "peak_rss_mb": peak_rss_mb()}


# --- worker: serving -------------------------------------------------------------------


def python_clean(message: str, stop_words) -> list:
  """The article's way: regex cleaning and tokenising in Python."""
  message = re.sub(r"(?:https?://|www\.)\S*", " xxurl ", message.lower())
  message = re.sub(r"@\w+", " ", message)
  message = re.sub(r"['’`]", "", message)
  message = re.sub(r"\d+", " xxnum ", message)
  message = re.sub(r"[^a-z\s]", " ", message)
  return [w for w in message.split() if w not in stop_words]


def serve_worker(config, calls, trained_dir=None):
  """The config's export in float32 and bfloat16, and its explain signature (not for a three-member export: 65
  encoder passes a message); for a token-ids model, the article's Python ways too. `trained_dir`: export that
  trained model dir rather than random weights (which serve as fast)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf.data import text  # pylint: disable=import-outside-toplevel
  from disaster_tf.model import features  # pylint: disable=import-outside-toplevel
  from disaster_tf.model import networks  # pylint: disable=import-outside-toplevel
  from disaster_tf.serve import savedmodel  # pylint: disable=import-outside-toplevel
  from disaster_tf.train import checkpoint as ckpt_lib  # pylint: disable=import-outside-toplevel
  run = prepare(config)
  # The Python pipeline below reads token ids (an encoder model has WordPiece ids instead).
  vocabulary = list(run.vocabularies[features.TOKEN_IDS].tokens) if features.TOKEN_IDS in run.vocabularies else []
  messages = run.splits.validation.read_texts()
  model = networks.build_model(config.model, run.featurizer.sizes,  # weights do not change speed
                                encoder_shape=run.vocabularies.get(features.ENCODER))
  work = tempfile.mkdtemp()
  model_dir = trained_dir or os.path.join(work, "model")
  if not trained_dir:
    ckpt_lib.write_model_dir(model_dir, config, run.vocabularies, model)
  signatures = {p: tf.saved_model.load(savedmodel.export(model_dir, os.path.join(work, "export"), warmup=False,
                                                      precision=p)).signatures for p in ("float32", "bfloat16")}
  exported = {p: s[savedmodel.PREDICT_KEY] for p, s in signatures.items()}
  explain = signatures["float32"][savedmodel.EXPLAIN_KEY]
  index = {t: i for i, t in enumerate(vocabulary)}
  stop = set(text.STOP_WORDS)
  seq = config.model.sequence_length

  def ids_of(batch):
    out = np.zeros((len(batch), seq), np.int64)
    for row, m in enumerate(batch):
      tokens = [index.get(w, 1) for w in python_clean(m, stop)][:seq]
      out[row, :len(tokens)] = tokens
    return {features.TOKEN_IDS: out}

  systems = {
      "SavedModel": lambda b: exported["float32"](text=tf.constant(b))["scores"].numpy(),
      "SavedModel bfloat16": lambda b: exported["bfloat16"](text=tf.constant(b))["scores"].numpy(),
      # The explain signature: the same scores and each word's leave-one-out contribution (explain.py).
      "SavedModel explain": lambda b: explain(text=tf.constant(b))["top_contributions"].numpy(),
  }
  if config.train.encoder_member:
    del systems["SavedModel explain"]
  if list(run.vocabularies) == [features.TOKEN_IDS]:  # Python can only build token ids
    systems["Python + model.predict"] = lambda b: model.predict(ids_of(b), verbose=0)
    systems["Python + model call"] = lambda b: networks.probabilities(model(ids_of(b), training=False))[0].numpy()
  result = {}
  for name, fn in systems.items():
    for i in range(20):
      fn(messages[i:i + 1])
    latencies = []
    for i in range(calls):
      start = time.perf_counter()
      fn(messages[i % len(messages):i % len(messages) + 1])
      latencies.append((time.perf_counter() - start) * 1000)
    entry = {"p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99))}
    for batch in (1, 32, 256):
      fn(messages[:batch])
      n_calls, start = 0, time.perf_counter()
      while time.perf_counter() - start < 3.0:
        offset = (n_calls * batch) % (len(messages) - batch)
        fn(messages[offset:offset + batch])
        n_calls += 1
      entry[f"msgs_per_s_b{batch}"] = n_calls * batch / (time.perf_counter() - start)
    result[name] = entry
  result["peak_rss_mb"] = peak_rss_mb()
  return result


# --- parent ------------------------------------------------------------------------------


def run_worker(spec: str) -> dict:
  """Runs one measurement in a fresh process; a failure becomes {"error": its last line}."""
  f = flags.FLAGS
  cmd = [sys.executable, os.path.abspath(__file__), f"--worker={spec}", f"--data={f.data}", f"--steps={f.steps}",
         f"--warmup={f.warmup}", f"--calls={f.calls}", f"--trained={','.join(f.trained)}"]
  print("$", " ".join(cmd[1:]), flush=True)
  out = subprocess.run(cmd, cwd=common.ROOT, capture_output=True, text=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  if out.returncode:
    errors = [line for line in out.stderr.splitlines() if "Error" in line or "must be" in line]
    result = {"error": " ".join(errors[-2:])[:300] or f"exit {out.returncode}"}
  else:
    result = json.loads(out.stdout.strip().splitlines()[-1])
  print("  ", result, flush=True)
  return result


def worker_config(config_name: str, data: str):
  """The Config a worker measures: a shipped flagfile's, or the pretrained configuration's encoder member."""
  if config_name == ENCODER_MEMBER:
    from disaster_tf.train import members  # pylint: disable=import-outside-toplevel
    return members.encoder_config(common.config_from_flagfile(CONFIGS["pretrained"], data=data))
  return common.config_from_flagfile(CONFIGS[config_name], data=data)


def main(argv):
  del argv
  f = flags.FLAGS
  if f.worker:
    kind, config_name, *rest = f.worker.split(":")
    config = worker_config(config_name, f.data)
    if kind == "train":
      result = train_worker(config, rest[0], f.steps, f.warmup)
    elif kind == "profile":
      result = profile_worker(config, f.steps, f.warmup, rest[0])
    else:
      result = serve_worker(config, f.calls, dict(t.split(":", 1) for t in f.trained).get(config_name))
    print(json.dumps(result))
    return
  lines = []
  for config_name in f.train_configs if "training" in f.parts else ():
    lines += training_lines(config_name)
  if "serving" in f.parts:
    served = {}
    for config_name in f.serve_configs:
      lines += serving_lines(config_name, served)
    lines += against_article(served)
  if "time" in f.parts:
    lines += time_to_model_lines()
  text = "\n".join(lines)
  print(text)
  common.write_section(f.section, "Speed" + ("" if f.section == "speed" else f" ({f.section})"), text)


def against_article(served: dict) -> list:
  """The default's export against the article's way of serving (Python cleaning, then `model.predict`)."""
  article = served.get("multi_cnn", {}).get("Python + model.predict")
  lines = []
  for name in ("default", "pretrained"):
    export = served.get(name, {}).get("SavedModel")
    if not (article and export):
      continue
    p50, b256 = export["p50_ms"] / article["p50_ms"], export["msgs_per_s_b256"] / article["msgs_per_s_b256"]
    lines += [f"The {name} configuration's export against the article's way (multi_cnn's Python + model.predict, "
              f"same run): p50 {p50:.2f}x (bound <= 0.5x: {'met' if p50 <= 0.5 else 'NOT met'}), batch-256 "
              f"throughput {b256:.2f}x (bound >= 0.1x: {'met' if b256 >= 0.1 else 'NOT met'}).", ""]
  return lines


def training_lines(config_name: str) -> list:
  """The loop against fit in each precision, and where a step's time goes in float32 and bfloat16."""
  from disaster_tf import config as config_lib  # pylint: disable=import-outside-toplevel
  f = flags.FLAGS
  config = worker_config(config_name, f.data)
  sparse = config.model.architecture in config_lib.TFIDF_ARCHITECTURES
  rows = {}
  for v in TRAIN_VARIANTS:
    if f.variants and v[0] not in f.variants:
      rows[v[0]] = {"error": "not measured in this run (--variants)"}
    elif sparse and v[3]:
      rows[v[0]] = {"error": "n/a: XLA cannot compile the TF-IDF inputs' sparse ops"}
    elif v[0] in OPTIMIZER_OF and config.train.optimizer != "adam":
      rows[v[0]] = {"error": f"n/a: this configuration trains with {config.train.optimizer}"}
    else:
      rows[v[0]] = run_worker(f"train:{config_name}:{v[0]}")
  fit = {"float32": rows["fit"].get("examples_per_s"), "mixed_bfloat16": rows["fit bf16"].get("examples_per_s")}
  source = CONFIGS.get(config_name, f"members.encoder_config of {CONFIGS['pretrained']}")
  lines = [f"**Training, {config_name} configuration** (`{source}`), {f.steps} timed steps "
           f"after {f.warmup}:", "",
           "| variant | precision | examples/s | vs. fit (same precision) | vs. loop float32 | peak RSS MB |",
           "| --- | --- | --- | --- | --- | --- |"]
  base = rows["loop"].get("examples_per_s")
  for name, kind, spe, _, _, precision in TRAIN_VARIANTS:
    r = rows[name]
    if "error" in r:
      lines.append(f"| {name} | {precision} | {r['error']} | | | |")
      continue
    same = fit[precision] if kind == "custom" else None
    versus_fit = f"{r['examples_per_s'] / same:.2f}x" if same else "-"
    reference = rows["loop spe=16"].get("examples_per_s") if spe == 16 else base
    versus_f32 = f"{r['examples_per_s'] / reference:.2f}x" if kind == "custom" and reference else "-"
    lines.append(f"| {name} | {precision} | {r['examples_per_s']:.0f} | {versus_fit} | {versus_f32} | "
                 f"{r['peak_rss_mb']:.0f} |")
  lines.append("")
  for precision in ("float32", "mixed_bfloat16") if not f.variants else ():  # --variants: those rows only
    profile = run_worker(f"profile:{config_name}:{precision}")
    if "error" in profile:
      lines += [f"Profile ({precision}) failed: {profile['error']}", ""]
      continue
    lines += [f"Where a training step of the {config_name} configuration goes in {precision} (ms per step, batch "
              f"{profile['batch_size']}, batches already in memory except the input row):", "",
              "| part | ms / step |", "| --- | --- |"]
    lines += [f"| {part} | {ms:.2f} |" for part, ms in profile["ms_per_step"].items()]
    lines.append("")
  return lines


def serving_lines(config_name: str, served: dict) -> list:
  """The export in float32 and bfloat16 (and, for a token-ids model, the article's Python ways), in process.

  Each system's numbers also go into `served[config_name]`.
  """
  f = flags.FLAGS
  serve = run_worker(f"serve:{config_name}")
  served[config_name] = serve
  if "error" in serve:
    return [f"Serving, {config_name}: failed: {serve['error']}", ""]
  base = serve["SavedModel"]
  trained = dict(t.split(":", 1) for t in f.trained).get(config_name)
  lines = [f"**Serving, {config_name} configuration** (`{CONFIGS[config_name]}`"
           f"{f', the trained model dir {trained}' if trained else ''}), in-process, raw validation "
           f"messages (latency over {f.calls} single-message calls; throughput over 3 s per batch size):", "",
           "| system | p50 ms | p99 ms | msgs/s b=1 | msgs/s b=32 | msgs/s b=256 | p50 vs. SavedModel "
           "| b=256 vs. SavedModel |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
  for name, r in serve.items():
    if name == "peak_rss_mb":
      continue
    lines.append(f"| {name} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['msgs_per_s_b1']:.0f} | "
                 f"{r['msgs_per_s_b32']:.0f} | {r['msgs_per_s_b256']:.0f} | {r['p50_ms'] / base['p50_ms']:.2f}x | "
                 f"{r['msgs_per_s_b256'] / base['msgs_per_s_b256']:.2f}x |")
  return lines + [f"\nServing worker peak RSS: {serve['peak_rss_mb']:.0f} MB (every system in one process).", ""]


def time_to_model_lines() -> list:
  """README's main job (train + export, whole processes) in float32 and bfloat16, and the sklearn fit."""
  import reference  # pylint: disable=import-outside-toplevel  # bench/reference.py; needs .[bench]
  f = flags.FLAGS
  out = tempfile.mkdtemp(prefix="bench-speed-runs-")
  atexit.register(shutil.rmtree, out, True)
  sklearn = reference.fit_and_score(f.data, common.config_from_flagfile(CONFIGS["default"], data=f.data).train)
  lines = ["**Time to a trained model**: the README main job (train with the default flagfile, then export; "
           "each a whole process) against the scikit-learn reference's fit on the same training split "
           f"({sklearn['fit_seconds']:.0f} s; validation Total {sklearn['final']['total']:.2f} tuned):", "",
           "| precision | train s | export s | main job s | vs. sklearn fit | validation Total tuned | @0.5 |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
  for precision in ("float32", "mixed_bfloat16"):
    body, train_s = common.run_train(precision, CONFIGS["default"], [f"--precision={precision}"], f.data, out)
    export_s = common.run_export(os.path.join(out, precision), os.path.join(out, f"{precision}-export"))
    job = train_s + export_s
    lines.append(f"| {precision} | {train_s:.0f} | {export_s:.0f} | {job:.0f} | {job / sklearn['fit_seconds']:.1f}x "
                 f"| {body['final']['total']:.2f} | {body['final']['at_0.5']['total']:.2f} |")
  return lines


if __name__ == "__main__":
  define_flags()
  app.run(main)
