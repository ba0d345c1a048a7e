"""The training wing: a run in a model dir, from a Config to checkpoints, thresholds and a final report.

  loop        the outer loop as named phases: train_and_evaluate(config, model_dir); progress lines
  course      what the log says of the run's course: the plan, each phase, the time left, early stops
  gate        the language gate's phase: fitted on the training split's messages against their originals
  members     an ensemble's third member, the fine-tuned encoder: its run's config, and the members' blend
  inputs      the first phase: data, splits, vocabularies, class weights, vectorised datasets
  trainer     the second: model, optimizer, counters, checkpoint managers, compiled steps
  steps       the inner loop: compiled training and evaluation steps (model math only)
  rundir      every read and write of a run's model dir, and its crash-safety invariants
  checkpoint  what a model dir holds; readable checkpoints, run identity; load_model() for the export
  dirlock     one writer per model dir (an exclusive flock), readers sharing it (the export)
  distribute  the tf.distribute strategy, and which process writes the model dir
  optimizers  Adam in TensorFlow's fused kernel
  stops       SIGINT / SIGTERM as a flag the loop checks between compiled calls
  summaries   TensorBoard scalars and PR curves, with core TensorFlow
  prune       what a finished model dir can give up (export.py --prune)

May import: the model and data wings and the shared modules; never serve, triage or cli.
"""
