"""disaster_tf: a multi-output text classifier for disaster-response messages.

Modules, one job each (import order runs top to bottom, no cycles):
  labels   the 36 categories and their label ranges
  config   frozen dataclasses for the model and the run, saved as JSON
  data     reading both CSV formats, id split, tf.data pipelines
  text     in-graph standardisation and the TextVectorization layer
  model    embedding -> conv -> recurrent backbone with one head per category
  losses   class weights -> per-head sample weights; the combined loss
  metrics  per-category precision / recall / F1 and the summary scores
  loop     the custom GradientTape training loop (`train_and_evaluate`)
"""

__version__ = "0.1.0"
