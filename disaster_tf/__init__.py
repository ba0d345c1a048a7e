"""disaster_tf: a multi-output text classifier for disaster-response messages, in five wings.

Each wing is a subpackage whose docstring lists its modules; each imports only the wings below it (the lint
step checks it: setup.cfg's import-linter contracts), so the order is also the order to read them in:

  cli       the entry points: flags are defined and read there only (disaster-train, -export, ...)
  triage    the operators' page: its server, decisions API and review queue
  serve     the text-in SavedModel for TF Serving, and everything that scores messages with one
  train     a run in a model dir: the outer and inner loops, checkpoints, crash safety
  model     features, networks, losses, metrics: what the classifier is and how it is judged
  data      labelled messages from CSV files to tf.data, and operators' decisions as labels

Shared by every wing, at this root: labels (the 36 categories), config (the frozen dataclasses of a run, saved
as JSON), records (the typed records that cross modules, files and the page) and flagfiles (the shipped
flagfiles by name). None of them loads TensorFlow.
"""

__version__ = "0.1.0"
