"""The triage page: operators paste or upload messages and see their categories, most urgent first.

  disaster-triage --export_dir=models/disaster                                  # http://127.0.0.1:8080
  python triage.py --serving_url=http://localhost:8501/v1/models/disaster      # the same page over TF Serving

The page, its script and its style sheet are served by this process (nothing
from the network), so it works offline. It binds 127.0.0.1 unless --host says
otherwise, answers only requests whose Host names it (--allowed_hosts adds a
reverse proxy's name), and limits requests and uploads. With --export_dir a
base directory, a newer version that appears there is loaded and used (the
Model tab says when). Stop it with Ctrl-C.
"""


from absl import app
from absl import flags

from disaster_tf import cli
from disaster_tf.cli import predict as predict_cli

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines triage.py's flags (called under __main__ only)."""
  predict_cli.define_model_flags()
  flags.DEFINE_string("host", "127.0.0.1", "Address to listen on; 127.0.0.1 keeps the page on this machine "
                      "(0.0.0.0 serves the network: put it behind the organisation's access control).")
  flags.DEFINE_integer("port", 8080, "Port to listen on (0: any free port).", lower_bound=0)
  flags.DEFINE_integer("max_upload_mb", 20, "Largest CSV upload, in MB (about 100k messages).", lower_bound=1)
  flags.DEFINE_string("db", None, "Keep operators' decisions in this SQLite file (created if need be): the "
                      "page then lets an operator confirm or correct a message's categories.")
  flags.DEFINE_string("operators", None, "Operator tokens (disaster-decisions --add_operator writes them); "
                      "required with --db on any address but loopback.")
  flags.DEFINE_list("allowed_hosts", [], "More names the page may be reached by (the Host header), e.g. a "
                    "reverse proxy's; its own address, and loopback names on 127.0.0.1, are always allowed.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from disaster_tf.data import decisions  # pylint: disable=import-outside-toplevel
  from disaster_tf.serve import predict  # pylint: disable=import-outside-toplevel
  from disaster_tf.triage import app as app_lib  # pylint: disable=import-outside-toplevel
  from disaster_tf.triage import review  # pylint: disable=import-outside-toplevel
  from disaster_tf.triage import server as server_lib  # pylint: disable=import-outside-toplevel
  order = predict.urgency_order(FLAGS.urgency)
  api = None
  if FLAGS.db:  # checked before a model loads
    if FLAGS.operators is None and FLAGS.host not in server_lib.LOOPBACK:
      raise app.UsageError(f"--host={FLAGS.host} with --db needs --operators=FILE: on the network, only an "
                           "operator with a token may decide (put TLS in front: see README)")
    api = review.DecisionsApi(decisions.Store(FLAGS.db), review.Operators(FLAGS.operators) if FLAGS.operators
                              else None)
  limits = {"order": order, "max_upload_bytes": FLAGS.max_upload_mb << 20}
  if FLAGS.export_dir and not FLAGS.serving_url:  # a newer version under --export_dir is picked up, as TF Serving does
    cli.import_tensorflow()
    page = app_lib.TriageApp.for_export(FLAGS.export_dir, **limits)
  else:
    scorer, explainer = (predict_cli.make_scorer(explain=explain)[0] for explain in (False, True))  # TF Serving's
    page = app_lib.TriageApp(scorer, None, explainer=explainer, **limits)
  page.decisions = api
  server = server_lib.make_server(page, FLAGS.host, FLAGS.port, FLAGS.allowed_hosts)
  host, port = server.server_address[:2]
  print(f"scoring with {page.loaded.describe() if page.loaded else FLAGS.serving_url}", flush=True)
  print(f"triage page on http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    server.server_close()


def run() -> None:
  """`disaster-triage` and `python triage.py`."""
  cli.run(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
