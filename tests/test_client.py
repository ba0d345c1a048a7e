"""The client's REST and gRPC paths against a local server speaking TF Serving's protocols."""

import numpy as np
import pytest
import tensorflow as tf

from disaster_tf import client
from disaster_tf import labels
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
    assert row["labels"]["related"] == l[0]


def test_bytes_that_are_not_utf8_travel_as_b64():
  assert client._json_text(b"\xff\xfe") == {"b64": "//4="}  # standard base64, not URL-safe
  assert client._json_text("plain") == "plain" and client._json_text("é".encode()) == "é"


def test_errors_name_the_server_and_model(server):
  stub, _ = server
  with pytest.raises(RuntimeError, match=r"v1/models/nomodel:predict: HTTP 404"):
    client.predict_rest(TEXTS, f"http://127.0.0.1:{stub.rest_port}", "nomodel")
  import grpc  # pylint: disable=import-outside-toplevel
  with pytest.raises(grpc.RpcError, match="Servable not found"):
    client.predict_grpc(TEXTS, f"127.0.0.1:{stub.grpc_port}", "nomodel")
