"""The operators' wing: the triage page, its decisions API and the review queue.

  server      the page's HTTP server (standard library, threaded): framing, Host check, limits, answers
  app         TriageApp: what the page is answered with (scorer, explainer, the export it follows, answers)
  review      who may decide (operator tokens); decide, undo, decided and the review queue over a decisions Store
  sampling    active learning: which undecided messages an operator should decide first
  retrain     --retrain_every: after N new decisions, train.py and export.py as child processes, one at a time
  static/     the page itself (index.html, app.js, style.css), served by `server`, nothing from another host

May import: the serving, model and data wings and the shared modules, but not training (a contract of the lint
step): the page follows exports, it never trains in its own process (retrain runs train.py as a child).
"""
