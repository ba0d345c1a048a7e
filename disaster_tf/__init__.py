"""disaster_tf: a multi-output text classifier for disaster-response messages.

Modules, one job each (each imports only modules above it: no cycles):
  labels      the 36 categories and their label ranges
  config      frozen dataclasses for the model and the run, saved as JSON
  data        reading both CSV formats into a text spool, the id split, tf.data pipelines
  text        in-graph standardisation and the TextVectorization layer
  model       four backbones (cnn_rnn, bigru, multi_cnn, linear), one head per category
  losses      class weights -> per-head sample weights; the combined loss
  metrics     per-category precision / recall / F1, the summary scores, threshold tuning
  checkpoint  what a model dir holds; rebuilding a trained model from one
  distribute  the tf.distribute strategy and which process writes the model dir
  inputs      a run's first phase: data, splits, vocabulary, weights, vectorised caches
  steps       the inner loop: compiled training and evaluation steps
  loop        the outer loop, as named phases (`train_and_evaluate`)
  serving     the text-in SavedModel for TF Serving (`export`)
  evaluate    scoring an export on labelled data
  client      REST and gRPC clients of a TF Serving model

Entry points (flags are read there only): train.py, export.py, evaluate.py.
"""

__version__ = "0.1.0"
