"""The triage page: operators paste or upload messages and see their categories, most urgent first.

  disaster-triage --export_dir=models/disaster                                  # http://127.0.0.1:8080
  python triage.py --serving_url=http://localhost:8501/v1/models/disaster      # the same page over TF Serving
  disaster-triage --export_dir=models/disaster --db=decisions.db \
      --retrain_every=100 --retrain_flagfile=configs/disaster_response.flags    # retrains after 100 decisions

The page, its script and its style sheet are served by this process (nothing
from the network), so it works offline. It binds 127.0.0.1 unless --host says
otherwise, answers only requests whose Host names it (--allowed_hosts adds a
reverse proxy's name), and limits requests and uploads. With --export_dir a
base directory, a newer version that appears there is loaded and used (the
Model tab says when). With --retrain_every=N, every N new decisions train and
export a new version in the background (triage/retrain.py), which the page then
serves. Stop it with Ctrl-C.
"""

import os

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
  flags.DEFINE_integer("retrain_every", 0, "With --db and --export_dir a base directory: after this many new "
                       "decisions, train on --retrain_data plus the decisions and export a new version, in the "
                       "background (0: never; retrain by hand with train.py --decisions).", lower_bound=0)
  flags.DEFINE_string("retrain_flagfile", "configs/disaster_response.flags", "The retrains' training "
                      "configuration (the serving model's, as a rule).")
  flags.DEFINE_string("retrain_data", None, "The retrains' --data (default: the flagfile's).")
  flags.DEFINE_string("retrain_dir", "runs/retrain", "The retrains' model dirs and logs, one of each a run.")
  flags.DEFINE_list("retrain_flags", [], "More train.py flags for the retrains, e.g. --epochs=3 (faster, rougher).")
  flags.DEFINE_float("claim_minutes", 5.0, "An operator's claim of the message they opened lasts this long "
                     "(a decision or a release ends it sooner): others see who reads it and get the next one.",
                     lower_bound=0.1)
  flags.DEFINE_float("second_opinion", 0.1, "This share of decided messages goes back to the Review queue for a "
                     "second operator (never the first); the Team tab shows the agreement (0: none).",
                     lower_bound=0.0, upper_bound=1.0)
  flags.DEFINE_list("reviewers", [], "Operators who settle disagreements between two operators (their own "
                    "queue in the Review tab); a reviewer's decision stands, and trains.")
  flags.DEFINE_enum("server", "auto", ["auto", "waitress", "stdlib"], "The HTTP server: waitress (the app extra; "
                    "a slow client holds no thread), stdlib (nothing to install), auto: waitress if installed.")
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
  retrain_config = check_retrain_flags()
  api = None
  if FLAGS.db:  # checked before a model loads
    if FLAGS.operators is None and FLAGS.host not in server_lib.LOOPBACK:
      raise app.UsageError(f"--host={FLAGS.host} with --db needs --operators=FILE: on the network, only an "
                           "operator with a token may decide (put TLS in front: see README)")
    api = review.DecisionsApi(decisions.Store(FLAGS.db), review.Operators(FLAGS.operators) if FLAGS.operators
                              else None, claim_seconds=60 * FLAGS.claim_minutes,
                              second_share=FLAGS.second_opinion, reviewers=frozenset(FLAGS.reviewers))
  limits = {"order": order, "max_upload_bytes": FLAGS.max_upload_mb << 20}
  if FLAGS.export_dir and not FLAGS.serving_url:  # a newer version under --export_dir is picked up, as TF Serving does
    cli.import_tensorflow()
    page = app_lib.TriageApp.for_export(FLAGS.export_dir, **limits)
  else:
    scorer, explainer = (predict_cli.make_scorer(explain=explain)[0] for explain in (False, True))  # TF Serving's
    page = app_lib.TriageApp(scorer, None, explainer=explainer, **limits)
  page.decisions = api
  if retrain_config:
    from disaster_tf.triage import retrain  # pylint: disable=import-outside-toplevel
    page.retrainer = retrain.Retrainer(retrain_config, api.store, page.trained_on_decisions()).start()
  server = server_lib.make_server(page, FLAGS.host, FLAGS.port, FLAGS.allowed_hosts, FLAGS.server)
  host, port = server.server_address[:2]
  print(f"scoring with {page.loaded.describe() if page.loaded else FLAGS.serving_url}", flush=True)
  print(f"triage page on http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    server.server_close()
    if page.retrainer:
      page.retrainer.stop()


def check_retrain_flags():
  """The retrain.RetrainConfig of the --retrain_* flags (None without --retrain_every), before a model loads.

  Raises:
    app.UsageError: --retrain_every without --db, without --export_dir a base directory the page follows, or
      with a bad --retrain_* flag.
  """
  if not FLAGS.retrain_every:
    return None
  if not FLAGS.db:
    raise app.UsageError("--retrain_every needs --db: the decisions it retrains on")
  if not FLAGS.export_dir or FLAGS.serving_url or os.path.isfile(os.path.join(FLAGS.export_dir, "saved_model.pb")):
    raise app.UsageError("--retrain_every needs --export_dir=BASE, the export base directory (not a version, not "
                         "--serving_url): the retrain writes its next version there and the page follows it")
  from disaster_tf.triage import retrain  # pylint: disable=import-outside-toplevel
  try:
    return retrain.RetrainConfig(FLAGS.retrain_every, FLAGS.retrain_flagfile, FLAGS.db, FLAGS.export_dir,
                                 FLAGS.retrain_dir, FLAGS.retrain_data, tuple(FLAGS.retrain_flags))
  except ValueError as e:
    raise app.UsageError(str(e)) from None


def run() -> None:
  """`disaster-triage` and `python triage.py`."""
  cli.run(define_flags, main, __doc__)


if __name__ == "__main__":
  run()
