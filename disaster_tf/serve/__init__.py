"""The serving wing: the text-in SavedModel for TF Serving, and everything that scores messages with one.

  module      ServingModule (predict, classify, explain signatures) over one trained Member, two routed by
              the language gate, or the Blend of an ensemble and its encoder member
  blend       a three-member run's export (--encoder_member): its blend checked, its members described
  savedmodel  a model dir -> ServingModule -> the atomic versioned export; its metadata
  explain     leave-one-word-out: which words made each category, in the export's graph
  warmup      TF Serving's warmup requests (each signature, each batch size batching may form)
  report      the evaluation as one self-contained HTML page; the model card
  evaluate    an export scored on labelled data, from its own `labels` output
  client      REST (standard library) and gRPC clients of a TF Serving model
  predict     scorers (an export in this process, or TF Serving), urgency order, an answer as operators read it
  scorefile   operators' CSV files in and out: every row scored or named, no cell a spreadsheet runs

May import: the training wing (an export reads a model dir through checkpoint and dirlock), the model and data
wings and the shared modules; never triage or cli.
"""
