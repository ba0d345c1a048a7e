"""The client's REST and gRPC paths against a local server speaking TF Serving's protocols."""

import http.server
import json
import socket
import threading

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import labels
from disaster_tf.serve import client
from tests import tf_serving_stub

TEXTS = ["We need water and food", "Fire in the market", b"\xff\xfe not utf-8"]


@pytest.fixture(scope="module")
def server(exported):
  _, path = exported
  with tf_serving_stub.Stub(path, "disaster") as stub:
    yield stub, path


def expected(path):
  out = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(TEXTS, tf.string))
  return out["scores"].numpy(), out["labels"].numpy()


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_client_returns_per_message_scores_and_predicted_categories(server, transport):
  stub, path = server
  if transport == "rest":
    results = client.predict_rest(TEXTS, f"http://127.0.0.1:{stub.rest_port}", "disaster")
  else:
    results = client.predict_grpc(TEXTS, f"127.0.0.1:{stub.grpc_port}", "disaster")
  scores, label_matrix = expected(path)
  assert len(results) == 3
  for row, s, l in zip(results, scores, label_matrix):
    assert list(row["scores"]) == list(labels.CATEGORIES)
    np.testing.assert_allclose([row["scores"][c] for c in labels.CATEGORIES], s, rtol=1e-5)
    assert row["predicted"] == [c for c, v in zip(labels.CATEGORIES, l) if v == 1]
    assert row["labels"]["related"] == l[0] and row["related"] == client.RELATED_WORDS[l[0]]


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_over_tf_serving_the_export_says_which_language_and_whether_it_reads_it(server, transport):
  stub, _ = server
  texts = ["Nou bezwen dlo ak manje tanpri", "We need water and food please"]
  if transport == "rest":
    results = client.predict_rest(texts, f"http://127.0.0.1:{stub.rest_port}", "disaster")
  else:
    results = client.predict_grpc(texts, f"127.0.0.1:{stub.grpc_port}", "disaster")
  # The `exported` model reads both languages (test_module.py has one that reads English only).
  assert [(r["language"], r["reads_language"]) for r in results] == [("other", True), ("english", True)]


def test_bytes_that_are_not_utf8_travel_as_b64():
  assert client._json_text(b"\xff\xfe") == {"b64": "//4="}  # standard base64, not URL-safe
  assert client._json_text("plain") == "plain" and client._json_text("é".encode()) == "é"


def test_errors_name_the_server_and_model(server):
  stub, _ = server
  with pytest.raises(client.ServingError, match=r"v1/models/nomodel:predict: HTTP 404"):
    client.predict_rest(TEXTS, f"http://127.0.0.1:{stub.rest_port}", "nomodel")
  with pytest.raises(client.ServingError, match=rf"grpc://127.0.0.1:{stub.grpc_port} \(model nomodel\): "
                                                 "NOT_FOUND: .*Servable not found"):
    client.predict_grpc(TEXTS, f"127.0.0.1:{stub.grpc_port}", "nomodel")


class _Answer(http.server.BaseHTTPRequestHandler):
  """Answers every POST with the class's `body`: what a broken server or proxy might send."""

  body = b""

  def do_GET(self):  # pylint: disable=invalid-name
    self._answer()

  def do_POST(self):  # pylint: disable=invalid-name
    self.rfile.read(int(self.headers["Content-Length"]))
    self._answer()

  def _answer(self):
    self.send_response(200)
    self.send_header("Content-Type", "application/json")
    self.end_headers()
    self.wfile.write(self.body)

  def log_message(self, *args):
    pass


@pytest.fixture
def answering():
  """A REST server on 127.0.0.1 answering a body the test chooses: yields (url, set_body)."""
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Answer,), {}))
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  def set_body(body):
    server.RequestHandlerClass.body = body
  yield f"http://127.0.0.1:{server.server_port}", set_body
  server.shutdown()
  server.server_close()


def test_rest_answers_that_are_not_one_row_per_message_are_errors(answering):
  url, set_body = answering
  set_body(b"<html>proxy error</html>")
  with pytest.raises(client.ServingError, match=r":predict: the answer is not TF Serving's predict format "
                                                 r"\(JSONDecodeError.*began b'<html>proxy error"):
    client.predict_rest(TEXTS, url)
  set_body(json.dumps({"error": "overloaded"}).encode())
  with pytest.raises(client.ServingError, match=r"not TF Serving's predict format \(KeyError: 'predictions'\)"):
    client.predict_rest(TEXTS, url)
  row = {"scores": [0.1] * 36, "labels": [0] * 36, "classes": list(labels.CATEGORIES)}
  set_body(json.dumps({"predictions": [row]}).encode())
  with pytest.raises(client.ServingError, match=r":predict: 1 rows answered for 3 messages"):
    client.predict_rest(TEXTS, url)
  set_body(json.dumps({"predictions": []}).encode())
  with pytest.raises(client.ServingError, match=r"0 rows answered for 3 messages"):
    client.predict_rest(TEXTS, url)
  with pytest.raises(client.ServingError, match=r"v1/models/disaster: the answer is not TF Serving's model status "
                                                 r"\(KeyError: 'model_version_status'\)"):
    client.status_rest(url)


def test_unreachable_and_silent_servers_are_errors_naming_the_url():
  closed = socket.socket()
  closed.bind(("127.0.0.1", 0))
  port = closed.getsockname()[1]
  closed.close()  # nothing listens there now
  with pytest.raises(client.ServingError, match=rf"http://127.0.0.1:{port}/v1/models/disaster:predict: cannot "
                                                 r"reach the server \(.*refused"):
    client.predict_rest(TEXTS, f"http://127.0.0.1:{port}")
  with socket.socket() as silent:  # accepts connections (the kernel's backlog) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    with pytest.raises(client.ServingError, match=rf"{url}/v1/models/disaster:predict: (no complete answer within "
                                                   r"0.3 s|cannot reach the server) \(.*timed out"):
      client.predict_rest(TEXTS, url, timeout=0.3)
    with pytest.raises(client.ServingError, match=rf"{url}/v1/models/disaster: (no complete answer within "
                                                   r"0.3 s|cannot reach the server) \(.*timed out"):
      client.status_rest(url, timeout=0.3)
  with pytest.raises(client.ServingError, match=rf"127.0.0.1:{port}/v1/models/disaster: cannot reach the server"):
    client.status_rest(f"http://127.0.0.1:{port}")
  with pytest.raises(client.ServingError, match=rf"grpc://127.0.0.1:{port} \(model disaster\): UNAVAILABLE"):
    client.predict_grpc(TEXTS, f"127.0.0.1:{port}", timeout=5)


def test_grpc_answers_that_are_not_one_row_per_message_are_errors(server, monkeypatch):
  stub, _ = server
  target, real = f"127.0.0.1:{stub.grpc_port}", stub.call
  monkeypatch.setattr(stub, "call", lambda name, inputs: {k: v[:1] for k, v in real(name, inputs).items()})
  with pytest.raises(client.ServingError, match=rf"grpc://{target} \(model disaster\): 1 rows answered for 3"):
    client.predict_grpc(TEXTS, target)
  monkeypatch.setattr(stub, "call", lambda name, inputs: {k: v for k, v in real(name, inputs).items()
                                                           if k != "labels"})
  with pytest.raises(client.ServingError, match=r"the answer lacks the output 'labels'; is this a disaster_tf"):
    client.predict_grpc(TEXTS, target)


def test_related_unsure_is_said_not_dropped(server, monkeypatch):
  stub, _ = server
  real = stub.call

  def unsure(name, inputs):
    out = real(name, inputs)
    out["labels"][:, 0] = 2
    return out
  monkeypatch.setattr(stub, "call", unsure)
  for row in client.predict_rest(TEXTS[:1], f"http://127.0.0.1:{stub.rest_port}"):
    assert row["related"] == "unsure" and row["labels"]["related"] == 2 and "related" not in row["predicted"]


def test_one_grpc_client_keeps_one_channel_and_checks_the_model_status(server, monkeypatch):
  import grpc  # pylint: disable=import-outside-toplevel
  stub, _ = server
  target = f"127.0.0.1:{stub.grpc_port}"
  stub.predict_channels.clear()
  opened = []  # channels the client code opens (gRPC may share one connection between channels to a target)
  real = grpc.insecure_channel
  monkeypatch.setattr(grpc, "insecure_channel", lambda *a, **k: opened.append(a[0]) or real(*a, **k))
  with client.GrpcClient(target, "disaster") as grpc_client:
    assert grpc_client.status() == {1: "AVAILABLE"}
    for _ in range(3):
      assert len(grpc_client.predict(TEXTS)) == 3
  assert len(stub.predict_channels) == 1 and opened == [target]  # status and three calls: one channel
  client.predict_grpc(TEXTS, target)
  assert opened == [target, target]  # the one-off function opens a channel of its own
  with pytest.raises(client.ServingError, match=rf"grpc://{target} \(model nomodel\): NOT_FOUND: Could not find"):
    client.GrpcClient(target, "nomodel")
  stub.state = "LOADING"
  try:
    with pytest.raises(client.ServingError, match=r"\(model disaster\): no version is AVAILABLE \(\{1: 'LOADING'\}\)"):
      client.GrpcClient(target, "disaster")
  finally:
    stub.state = "AVAILABLE"


def test_status_over_rest(server):
  stub, _ = server
  url = f"http://127.0.0.1:{stub.rest_port}"
  assert client.status_rest(url, "disaster") == {1: "AVAILABLE"}
  with pytest.raises(client.ServingError, match=r"v1/models/nomodel: HTTP 404"):
    client.status_rest(url, "nomodel")
