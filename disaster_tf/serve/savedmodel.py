"""The export: a text-in SavedModel for TF Serving, with its metadata, model card and warmup requests.

The SavedModel is `module.ServingModule` (its signatures and outputs are described there): the training
code's own featurizer and trained model, the run's thresholds, its language gate, for a routed run
(--route_english) its English-only model too, and for a three-member run (--encoder_member) its encoder member
beside the ensemble (blend.py). `export` writes a numbered version directory atomically:
everything is built in a hidden temporary directory beside it (TF Serving ignores names that are not integers)
and renamed into place at the end.
"""

import contextlib
import dataclasses
import datetime
import json
import os
import re
import shutil
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from absl import logging
from google.protobuf import message
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.saved_model import fingerprinting_utils

import disaster_tf
from disaster_tf import labels
from disaster_tf import records
from disaster_tf.model import features
from disaster_tf.model import language
from disaster_tf.model import precision as precision_lib
from disaster_tf.serve import blend as blend_lib
from disaster_tf.serve import module as module_lib
from disaster_tf.serve import report
from disaster_tf.serve import warmup as warmup_lib
from disaster_tf.train import checkpoint as ckpt_lib
from disaster_tf.train import dirlock
from disaster_tf.train import members as members_lib

PREDICT_KEY = "serving_default"
CLASSIFY_KEY = "classify"
EXPLAIN_KEY = "explain"  # predict's outputs and which words made each category (explain.py)
CLASSIFY_METHOD = "tensorflow/serving/classify"
METADATA_FILE = "disaster_tf.json"  # in assets.extra/: config and provenance of the export
MODEL_CARD_FILE = "model_card.md"  # in assets.extra/: what the model reads, how good it is, where not to trust it
WARMUP_FILE = "tf_serving_warmup_requests"  # in assets.extra/, read by TF Serving at load


def _versions(export_base: str) -> Dict[int, str]:
  """{version: its directory's name} of the integer-named subdirectories of `export_base` (what TF Serving
  loads; `0003` is version 3, as TF Serving parses it)."""
  if not os.path.isdir(export_base):
    return {}
  return {int(name): name for name in sorted(os.listdir(export_base), reverse=True)
          if re.fullmatch(r"\d+", name) and os.path.isdir(os.path.join(export_base, name))}


def next_version(export_base: str) -> int:
  """1 + the largest version under `export_base` (1 if none)."""
  return max(_versions(export_base), default=0) + 1


def _remove_dead_temporaries(export_base: str) -> None:
  """Removes what an export killed mid-write left (`.tmp-<version>-<pid>` of a process that is gone)."""
  for name in os.listdir(export_base) if os.path.isdir(export_base) else ():
    found = re.fullmatch(r"\.tmp-\d+-(\d+)", name)
    if found and not _alive(int(found.group(1))):
      shutil.rmtree(os.path.join(export_base, name), ignore_errors=True)


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process: alive
    return True
  return True


def export(model_dir: str, export_base: str, *, checkpoint: str = "best", version: Optional[int] = None,
           thresholds: Optional[Sequence[float]] = None, warmup: bool = True, precision: str = "float32") -> str:
  """Exports a trained model as version `version` under `export_base`.

  Args:
    model_dir: a directory written by training; the export is rebuilt from its
      config.json, the vocabularies and a checkpoint, nothing else. With
      checkpoint "best", a finished refit inside it (train.py --refit) is
      what is exported (`checkpoint.release_dir`).
    export_base: the model base path TF Serving watches.
    checkpoint: "best", "latest" or a checkpoint prefix.
    version: the version number; None takes the next one.
    thresholds: [36] decision thresholds (None: the model dir's
      thresholds.json, tuned by training; 0.5 everywhere without one).
    warmup: write assets.extra/tf_serving_warmup_requests (needs the
      tensorflow-serving-api package: `pip install .[serving]`).
    precision: what the served backbone computes in, "float32" (any host)
      or "bfloat16" (hosts with native bfloat16); the outputs are float32
      either way, the contract unchanged.

  Returns:
    The version directory.

  Raises:
    dirlock.DirectoryInUse: a run is writing `model_dir` (unless checkpoint
      is "latest": then that is exported, its metadata `unfinished`).
    ValueError: a file of the model dir that is not as training wrote it
      (config, vocabularies and their idf, lexicon, thresholds), named.
    FileExistsError: the version exists already (it is never overwritten).
    OSError: `export_base` cannot be written (a file, read-only, full); no
      version and no temporary directory is left behind.
  """
  if precision not in precision_lib.EXPORT_PRECISIONS:
    raise ValueError(f"precision={precision!r}: expected one of {', '.join(precision_lib.EXPORT_PRECISIONS)}")
  with contextlib.ExitStack() as held:
    running = _hold(held, model_dir, checkpoint)
    release = ckpt_lib.release_dir(model_dir) if checkpoint == "best" else model_dir  # a --refit run's is its refit
    if release != model_dir:
      _hold(held, release, checkpoint)
    refit, top, model_dir = release != model_dir, model_dir, release
    three = blend_lib.record(model_dir)  # --encoder_member: the blend's record, checked
    # Every file is checked before a TensorFlow object is built (load_model goes on).
    thresholds = _thresholds(model_dir, three, thresholds)
    gate = language.load(top)  # the run's, beside its refit: fitted once on the run's training split
    loaded = ckpt_lib.load_model(model_dir, checkpoint, precision_lib.EXPORT_PRECISIONS[precision])
    metadata = _metadata(loaded, model_dir, thresholds, precision, refit, with_report=checkpoint == "best",
                         running=running)
    if gate is not None:
      metadata = dataclasses.replace(metadata, language_gate={"threshold": gate[1].threshold, **gate[1].scores})
    english = _english_member(top, loaded, precision, gate is not None)
    if english is not None:
      metadata = dataclasses.replace(metadata, english_model=english[1])
    served, metadata = _served(model_dir, loaded, three, thresholds, precision, metadata)
    module = module_lib.ServingModule(served,
                                      language.LanguageGate(*gate) if gate is not None else None,
                                      english[0] if english is not None else None,
                                      english_only=metadata.reads_english_only())
    return _publish(module, metadata, export_base, version, warmup)


def _thresholds(model_dir: str, three: Optional[members_lib.Blend], given: Optional[Sequence[float]]) -> np.ndarray:
  """The [36] thresholds to serve: `given`, else the blend's (a three-member run's), else the model dir's."""
  if given is None:
    given = three.report.thresholds_array() if three else ckpt_lib.read_thresholds(model_dir)
  thresholds = np.asarray(given, np.float32)
  if thresholds.shape != (labels.NUM_CATEGORIES,):
    raise ValueError(f"thresholds: expected {labels.NUM_CATEGORIES} values, got shape {thresholds.shape}")
  return thresholds


def _served(model_dir: str, loaded: ckpt_lib.LoadedModel, three: Optional[members_lib.Blend], thresholds: np.ndarray,
            precision: str, metadata: records.ExportMetadata):
  """What the module serves: the run's model, or for a three-member run its blend, whose members and report the
  metadata then carries (the report only where the export has one: a finished run's best)."""
  if three is None:
    return module_lib.Member(loaded.model, loaded.featurizer, thresholds), metadata
  served, described = blend_lib.build(model_dir, loaded, three, thresholds, precision)
  return served, dataclasses.replace(metadata, members=described,
                                     report=three.report if metadata.report is not None else None)


def _english_member(top: str, loaded: ckpt_lib.LoadedModel, precision: str, gated: bool):
  """A routed run's English-only model (<model_dir>/english, --route_english) as a module.Member, and what the
  metadata says of it; None for any other run.

  Raises:
    ValueError: a routed run whose English model or gate is missing (named).
  """
  if not loaded.config.train.route_english:
    return None
  english_dir = os.path.join(top, ckpt_lib.ENGLISH_DIR)
  if not gated or not ckpt_lib.finished(english_dir):
    raise ValueError(f"{top}: a routed run (--route_english) exports with its English model ({english_dir}) and "
                     "its language gate, and one of them is not finished: run the same train.py command again")
  english = ckpt_lib.load_model(english_dir, "best", precision_lib.EXPORT_PRECISIONS[precision])
  thresholds = ckpt_lib.read_thresholds(english_dir)
  final, _ = _training_report(english_dir)
  return (module_lib.Member(english.model, english.featurizer, thresholds),
          {"model_dir": os.path.abspath(english_dir), "checkpoint": english.checkpoint_path,
           "report": final.scores.to_json() if final else None})


def _hold(held: contextlib.ExitStack, model_dir: str, checkpoint: str) -> bool:
  """Holds `model_dir`'s lock shared (no run writes it meanwhile); True if a run holds it and the user asked for
  --checkpoint=latest, which then exports that checkpoint marked unfinished.

  Raises:
    dirlock.DirectoryInUse: a run holds it, and another checkpoint was asked for.
  """
  try:
    held.enter_context(dirlock.shared(model_dir))
    return False
  except dirlock.DirectoryInUse as e:
    if checkpoint != "latest":
      raise dirlock.DirectoryInUse(f"{e}. Its best checkpoint is not final until the run ends; to export its "
                                   "latest checkpoint anyway, marked unfinished, pass --checkpoint=latest") from None
    logging.warning("%s; exporting its latest checkpoint, marked unfinished", e)
    return True


def _publish(module: module_lib.ServingModule, metadata: records.ExportMetadata, export_base: str,
             version: Optional[int], warmup: bool) -> str:
  """Writes `module` as a new version under `export_base`, atomically (see `export`); returns its directory."""
  version, final_dir = _new_version(export_base, version)
  _remove_dead_temporaries(export_base)
  tmp_dir = os.path.join(export_base, f".tmp-{version}-{os.getpid()}")
  try:
    _write_saved_model(module, metadata, tmp_dir, warmup)
    if os.path.exists(final_dir):  # someone else took the number meanwhile
      raise FileExistsError(f"{final_dir} appeared during the export; not overwriting it")
    os.rename(tmp_dir, final_dir)  # atomic on one filesystem: the server sees all or nothing
  except FileExistsError:
    raise
  except (OSError, tf.errors.OpError) as e:  # a full disk, a read-only base, ...
    raise OSError(f"{export_base}: could not write version {version} ({ckpt_lib.error_reason(e)}); nothing was "
                  "exported") from e
  finally:
    shutil.rmtree(tmp_dir, ignore_errors=True)
  logging.info("exported %s (checkpoint %s) to %s", metadata.model_dir, metadata.checkpoint, final_dir)
  return final_dir


def _new_version(export_base: str, version: Optional[int]) -> Tuple[int, str]:
  """(the version number, its directory) for a new export under `export_base`, which is created if need be.

  Raises:
    ValueError: a negative version. FileExistsError: it exists. OSError: `export_base` cannot be made.
  """
  version = next_version(export_base) if version is None else version
  if version < 0:
    raise ValueError(f"version={version}: TF Serving versions are non-negative integers")
  final_dir = os.path.join(export_base, str(version))
  if os.path.exists(final_dir):
    raise FileExistsError(f"{final_dir} exists; versions are never overwritten (omit --version for the next one)")
  try:
    os.makedirs(export_base, exist_ok=True)
  except OSError as e:
    raise OSError(f"{export_base}: cannot export there ({e.strerror or e}); expected a writable directory (or "
                  "none yet) for TF Serving's versions") from e
  return version, final_dir


def _write_saved_model(module: module_lib.ServingModule, metadata: records.ExportMetadata, directory: str,
                       warmup: bool) -> None:
  """The SavedModel with its three signatures, and assets.extra/: the metadata, the model card, the warmup
  requests (warmup.py)."""
  tf.saved_model.save(module, directory, signatures={PREDICT_KEY: module.predict, CLASSIFY_KEY: module.classify,
                                                   EXPLAIN_KEY: module.explain})
  _mark_classify_signature(directory)
  extra = os.path.join(directory, "assets.extra")
  os.makedirs(extra, exist_ok=True)
  with open(os.path.join(extra, METADATA_FILE), "w", encoding="utf-8") as f:
    json.dump(metadata.to_json(), f, indent=1)
  with open(os.path.join(extra, MODEL_CARD_FILE), "w", encoding="utf-8") as f:
    f.write(report.model_card(metadata))
  if warmup:
    warmup_lib.write(os.path.join(extra, WARMUP_FILE), (PREDICT_KEY, EXPLAIN_KEY), CLASSIFY_KEY)


def _metadata(loaded: ckpt_lib.LoadedModel, model_dir: str, thresholds: np.ndarray, precision: str, refit: bool,
              with_report: bool, running: bool = False) -> records.ExportMetadata:
  """The export's assets.extra/disaster_tf.json: what was exported, from where, and (`with_report`) how good.

  `unfinished` when a run is still writing the model dir (`running`) or never wrote its final report.
  """
  final, data = _training_report(model_dir)
  # The report describes the best checkpoint: carried along for the page and evaluate.
  report, data = (final, data) if with_report and not running else (None, None)
  return records.ExportMetadata(
      categories=labels.CATEGORIES, config=json.loads(loaded.config.to_json()), checkpoint=loaded.checkpoint_path,
      model_dir=os.path.abspath(model_dir), vocabulary_fingerprint=features.fingerprint(loaded.vocabularies),
      thresholds=tuple(thresholds.tolist()), precision=precision, version=disaster_tf.__version__, refit=refit,
      exported=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), report=report, data=data,
      unfinished=running or final is None)


def _mark_classify_signature(export_dir: str) -> None:
  """Gives the classify signature TF Serving's classify method name.

  tf.saved_model.save names every signature `tensorflow/serving/predict`, and
  TF Serving's Classify API refuses those, so the name is set in the saved
  proto; the fingerprint is then written again to match the edited file.
  """
  path = os.path.join(export_dir, "saved_model.pb")
  saved_model = saved_model_pb2.SavedModel()
  with open(path, "rb") as f:
    saved_model.ParseFromString(f.read())
  for meta_graph in saved_model.meta_graphs:
    meta_graph.signature_def[CLASSIFY_KEY].method_name = CLASSIFY_METHOD
  with open(path, "wb") as f:
    f.write(saved_model.SerializeToString())
  fingerprinting_utils.write_fingerprint(export_dir)


def load_predict(version_path: str):
  """The `serving_default` function of an export's version directory, as evaluate.py calls it: [batch] strings
  -> the outputs of `ServingModule.predict`."""
  return load_signatures(version_path)[PREDICT_KEY]


def load_signatures(version_path: str):
  """The signatures of an export's version directory, by key (predict.py and the page call serving_default and
  explain): each takes text=[batch] strings."""
  register_text_ops()
  try:
    return tf.saved_model.load(version_path).signatures
  # Cut short, corrupted or not ours: TensorFlow raises an OpError, or an IndexError for a truncated variables file.
  except (tf.errors.OpError, OSError, ValueError, IndexError, message.DecodeError) as e:
    reason = ckpt_lib.error_reason(e) if isinstance(e, tf.errors.OpError) else f"{type(e).__name__}: {e}"
    raise ValueError(f"{version_path}: the export cannot be loaded ({reason[:300]}); it may have been copied "
                     "while it was written or cut short by a full disk: export the model dir again, or name "
                     "another version") from None


def register_text_ops() -> None:
  """Registers TF Text's ops, if it is installed: an encoder export (--model=encoder) holds its WordPiece ops,
  which a Python process must register before loading it ("Op type not registered 'CaseFoldUTF8'" otherwise).
  Every other export holds core ops only, and loads without it."""
  try:
    import tensorflow_text  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    pass


def version_dir(export_dir: str) -> str:
  """A version directory as given, or the highest version under a base directory."""
  if os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
    return export_dir
  versions = _versions(export_dir)
  if not versions:
    raise FileNotFoundError(f"{export_dir}: neither a SavedModel (no saved_model.pb) nor a base directory "
                            "with numbered versions")
  return os.path.join(export_dir, versions[max(versions)])


def _training_report(model_dir: str) -> Tuple[Optional[records.FinalReport], Optional[records.LoadReport]]:
  """(the final validation report, what training read) from metrics.json, or (None, None) without one."""
  try:
    with open(os.path.join(model_dir, ckpt_lib.METRICS_FILE), encoding="utf-8") as f:
      body = json.load(f)
    if not body.get("final"):
      return None, None
    return records.FinalReport.from_json(body["final"]), records.LoadReport.from_json(body["data"])
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
    logging.warning("%s: no training report to carry in the export (%s)", model_dir, e)
    return None, None


def read_metadata(version_path: str) -> records.ExportMetadata:
  """The export's assets.extra/disaster_tf.json.

  Raises:
    FileNotFoundError: there is none (not an export of export.py).
    ValueError: it is not one export.py wrote (not JSON, or a field missing).
  """
  path = os.path.join(version_path, "assets.extra", METADATA_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file; was {version_path} exported by export.py?")
  try:
    with open(path, encoding="utf-8") as f:
      return records.ExportMetadata.from_json(json.load(f))
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise ValueError(f"{path}: not the metadata export.py writes ({type(e).__name__}: {e})") from None
