"""Speed: the custom loop vs. Keras model.fit, and the SavedModel vs. Python preprocessing.

  python bench/speed.py [--data=../shared/data] [--steps=150] [--calls=500]

One run, on the shared data, one configuration at a time, each in its own
worker process (so that each peak RSS is its own):

* training throughput (examples/s over --steps after a warm-up) for the
  default configuration and the article's setup: disaster_tf's loop
  (steps_per_execution 1 and 16, XLA off and on, vectorised data cached or
  not) against `model.fit` on the identical model, losses and per-head sample
  weights (built here), with XLA off and on;
* serving: the exported SavedModel called in-process on raw strings
  (single-message latency p50 / p99 over --calls calls; throughput at batch 1,
  32, 256) against the article's way: Python-side cleaning and tokenisation,
  then the Keras model on integer ids with `model.predict`; and, as a stronger
  baseline, the same with a direct call of the Keras model.

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

CONFIGS = {"default": "configs/disaster_response.flags", "article": "configs/seed_article.flags"}
# (name, kind, steps_per_execution, jit, cache)
TRAIN_VARIANTS = (
    ("loop", "custom", 1, False, True),
    ("loop spe=16", "custom", 16, False, True),
    ("loop XLA", "custom", 1, True, True),
    ("loop spe=16 XLA", "custom", 16, True, True),
    ("loop uncached", "custom", 1, False, False),
    ("fit", "fit", 1, False, True),
    ("fit XLA", "fit", 1, True, True),
)


def define_flags():
  flags.DEFINE_string("data", "../shared/data", "Data to read.")
  flags.DEFINE_integer("steps", 150, "Timed training steps per variant.")
  flags.DEFINE_integer("warmup", 20, "Untimed steps first (tracing, compilation).")
  flags.DEFINE_integer("calls", 500, "Single-message serving calls timed.")
  flags.DEFINE_string("worker", None, "Internal: run one measurement (train:CONFIG:VARIANT or serve:CONFIG).")


def peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- worker: training ------------------------------------------------------------------


def prepare(config):
  """The loop's own first phase (`inputs.prepare`) in a scratch dir removed at exit, as train.py has."""
  from disaster_tf import inputs  # pylint: disable=import-outside-toplevel
  scratch = tempfile.mkdtemp(prefix="bench-speed-")
  atexit.register(shutil.rmtree, scratch, True)
  return inputs.prepare(config, scratch)


def build_trainer(config, run, **train_overrides):
  """The loop's own model, optimizer and compiled steps (`loop.build_trainer`), seeded as the loop seeds them."""
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf import loop  # pylint: disable=import-outside-toplevel
  config = dataclasses.replace(config, train=dataclasses.replace(config.train, **train_overrides))
  keras.utils.set_random_seed(config.train.seed)
  save_dir = tempfile.mkdtemp(prefix="bench-speed-ckpt-")  # never written: nothing is saved
  atexit.register(shutil.rmtree, save_dir, True)
  return loop.build_trainer(config, run, tf.distribute.get_strategy(), save_dir)


def train_worker(config, variant, steps, warmup):
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf import data, labels, loop, model as model_lib  # pylint: disable=import-outside-toplevel
  _, kind, spe, jit, cache = next(v for v in TRAIN_VARIANTS if v[0] == variant)
  tc = config.train
  run = prepare(config)  # vectorises and fills the training caches, as train.py does before its first epoch
  blocks = run.train_blocks if cache else [data.vectorized_dataset(run.splits.train, run.featurizer, cache=None)]
  ds = data.batched(blocks, tc.batch_size, shuffle_seed=tc.seed, shuffle_buffer=tc.shuffle_buffer).repeat()
  if kind == "custom":
    train_steps = build_trainer(config, run, jit_compile=jit).train_steps
    iterator = iter(ds)

    def run_steps(n):
      done = 0
      while done < n:
        k = min(spe, n - done)
        float(train_steps(iterator, tf.constant(k))[0])  # wait for the result, as the loop does
        done += k
  else:
    keras.utils.set_random_seed(tc.seed)
    model = model_lib.build_model(config.model, run.featurizer.sizes)
    cw = tf.constant(run.class_weights)

    def to_fit(x, y):  # per-output labels and per-output sample weights: the same objective
      targets, weights = {}, {}
      for k, name in enumerate(labels.CATEGORIES):
        targets[name] = y[:, k] if name == labels.RELATED else tf.cast(y[:, k:k + 1], tf.float32)
        weights[name] = tf.gather(cw[k], y[:, k])
      return x, targets, weights
    fit_ds = ds.map(to_fit, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    model.compile(optimizer=loop.make_optimizer(tc, run.steps_per_epoch),
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


def profile_worker(config, steps, warmup):
  """Times the parts of a training step separately: input, forward, backward, optimizer update."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf import data, losses  # pylint: disable=import-outside-toplevel
  tc = config.train
  run = prepare(config)
  trainer = build_trainer(config, run)
  model = trainer.model
  cw, lw = tf.constant(run.class_weights), tf.constant(run.loss_weights)
  ds = data.batched(run.train_blocks, tc.batch_size, shuffle_seed=tc.seed, shuffle_buffer=tc.shuffle_buffer).repeat()
  batches = list(ds.take(16))  # in memory: the parts below exclude the input pipeline
  in_memory = iter(tf.data.Dataset.from_tensor_slices(
      tuple(tf.stack(part) for part in zip(*batches))).repeat())

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
      "input pipeline (cached, shuffled, batched)": lambda i: next(iterator)[0].numpy(),
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


def serve_worker(config, calls):
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from disaster_tf import checkpoint as ckpt_lib  # pylint: disable=import-outside-toplevel
  from disaster_tf import config as config_lib, features, serving, text  # pylint: disable=import-outside-toplevel
  from disaster_tf import model as model_lib  # pylint: disable=import-outside-toplevel
  run = prepare(config)
  vocabulary = list(run.vocabularies[features.TOKEN_IDS].tokens)  # the Python pipeline below reads token ids
  messages = run.splits.validation.read_texts()
  model = model_lib.build_model(config.model, run.featurizer.sizes)  # weights do not change speed
  work = tempfile.mkdtemp()
  model_dir = os.path.join(work, "model")
  os.makedirs(model_dir)
  config_lib.save(config, model_dir)
  features.save(run.vocabularies, model_dir)
  state = ckpt_lib.TrainState(ckpt_lib.fingerprint(features.fingerprint_items(run.vocabularies)))
  checkpoint = ckpt_lib.make_checkpoint(model, None, state)
  tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, ckpt_lib.BEST_DIR), 1).save(1)
  path = serving.export(model_dir, os.path.join(work, "export"), warmup=False)
  saved = tf.saved_model.load(path).signatures["serving_default"]
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
      "SavedModel": lambda b: saved(text=tf.constant(b))["scores"].numpy(),
      "Python + model.predict": lambda b: model.predict(ids_of(b), verbose=0),
      "Python + model call": lambda b: model_lib.probabilities(model(ids_of(b), training=False))[0].numpy(),
  }
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
         f"--warmup={f.warmup}", f"--calls={f.calls}"]
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


def main(argv):
  del argv
  f = flags.FLAGS
  if f.worker:
    kind, config_name, *rest = f.worker.split(":")
    config = common.config_from_flagfile(CONFIGS[config_name], data=f.data)
    if kind == "train":
      result = train_worker(config, rest[0], f.steps, f.warmup)
    elif kind == "profile":
      result = profile_worker(config, f.steps, f.warmup)
    else:
      result = serve_worker(config, f.calls)
    print(json.dumps(result))
    return
  lines = []
  for config_name in CONFIGS:
    rows = {v[0]: run_worker(f"train:{config_name}:{v[0]}") for v in TRAIN_VARIANTS}
    fit = rows["fit"]["examples_per_s"]
    lines += [f"**Training, {config_name} configuration** (`{CONFIGS[config_name]}`), {f.steps} timed steps "
              f"after {f.warmup}:", "",
              "| variant | examples/s | vs. fit | peak RSS MB |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {r['examples_per_s']:.0f} | {r['examples_per_s'] / fit:.2f}x | {r['peak_rss_mb']:.0f} |"
              if "error" not in r else f"| {name} | failed: {r['error']} | | |" for name, r in rows.items()]
    lines.append("")
    profile = run_worker(f"profile:{config_name}")
    lines += [f"Where a training step of the {config_name} configuration goes (ms per step, batch "
              f"{profile['batch_size']}, batches already in memory except the input row):", "",
              "| part | ms / step |", "| --- | --- |"]
    lines += [f"| {part} | {ms:.2f} |" for part, ms in profile["ms_per_step"].items()]
    lines.append("")
  serve = run_worker("serve:default")
  base = serve["Python + model.predict"]
  lines += ["**Serving, default configuration**, in-process, raw validation messages "
            f"(latency over {f.calls} single-message calls; throughput over 3 s per batch size):", "",
            "| system | p50 ms | p99 ms | msgs/s b=1 | msgs/s b=32 | msgs/s b=256 | p50 vs. predict "
            "| b=256 vs. predict |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
  for name in ("SavedModel", "Python + model.predict", "Python + model call"):
    r = serve[name]
    lines.append(f"| {name} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['msgs_per_s_b1']:.0f} | "
                 f"{r['msgs_per_s_b32']:.0f} | {r['msgs_per_s_b256']:.0f} | {r['p50_ms'] / base['p50_ms']:.2f}x | "
                 f"{r['msgs_per_s_b256'] / base['msgs_per_s_b256']:.2f}x |")
  lines.append(f"\nServing worker peak RSS: {serve['peak_rss_mb']:.0f} MB (all three systems in one process).")
  text = "\n".join(lines)
  print(text)
  common.write_section("speed", "Speed", text)


if __name__ == "__main__":
  define_flags()
  app.run(main)
