"""disaster_tf: a multi-output text classifier for disaster-response messages.

Modules, one job each (each imports only modules above it: no cycles; the lint step checks):
  labels      the 36 categories and their label ranges
  records     the typed records that cross modules, files and the page (scores, reports, export metadata)
  config      frozen dataclasses for the model and the run, saved as JSON
  metrics     per-category precision / recall / F1, the summary scores, threshold tuning
  textfiles   what a user's text file must be (UTF-8), and a sentence naming what it is instead
  data        labelled messages on disk (Examples), the id split, the tf.data pipeline
  decisions   operators' decisions in SQLite (WAL, schema version); the data with them applied
  sampling    active learning: which undecided messages teach the model most (uncertainty, diversity)
  csv_data    reading both labelled CSV formats into a text spool, every row validated
  text        in-graph standardisation and the word-id TextVectorization layer
  lexicon     words of the originals paired with English words; in-graph expansion
  features    raw text -> the model's named inputs (word ids, TF-IDF n-grams)
  model       six backbones, one head per category per member (the ensemble has two members)
  losses      class weights -> per-head sample weights; the combined loss
  precision   the Keras dtype policies of --precision
  optimizers  Adam in TensorFlow's fused kernel
  checkpoint  what a model dir holds; readable checkpoints; rebuilding a trained model from one
  dirlock     one writer per model dir (training), readers sharing it (export)
  distribute  the tf.distribute strategy and which process writes the model dir
  inputs      a run's first phase: data, splits, vocabularies, weights, vectorised caches
  steps       the inner loop: compiled training and evaluation steps
  trainer     a run's model, optimizer, counters, checkpoint managers and compiled steps
  rundir      every read and write of a run's model dir, and its crash-safety invariants
  stops       SIGINT / SIGTERM as a flag the loop checks
  summaries   TensorBoard scalars and PR curves
  loop        the outer loop, as named phases (`train_and_evaluate`)
  report      the evaluation page and the model card
  explain     which words made each category: leave-one-word-out, in the export's graph
  warmup      TF Serving's warmup requests, written into an export
  serving     the text-in SavedModel for TF Serving (`export`) and its metadata
  client      REST and gRPC clients of a TF Serving model
  predict     scorers (an export in process, or TF Serving); urgency order; an answer as operators read it
  evaluate    scoring an export on labelled data
  scorefile   operators' CSV files in and out: every row scored or named, no cell a spreadsheet runs
  triageapp   what the operators' page is answered with: scorer, explainer, the export it follows
  triage      the operators' page server (HTTP) over a triageapp.TriageApp

Entry points (flags are read there only): disaster_tf/cli/ (train, export, evaluate, predict, triage), which
the top-level train.py, export.py, evaluate.py, predict.py and triage.py wrap.
"""

__version__ = "0.1.0"
