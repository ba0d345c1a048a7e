"""A small client for the exported model on TF Serving (REST or gRPC).

  from disaster_tf import client
  client.predict_rest(["We need water in Leogane"], "http://localhost:8501", "disaster")
  client.predict_grpc(["We need water in Leogane"], "localhost:8500", "disaster")

Each returns, per message, {"scores": {category: probability}, "labels":
{category: label}, "predicted": [categories whose label is 1]}, one entry per
message sent. Anything else (a refused connection, a time-out, an HTTP or
gRPC error, an answer that is not JSON or has another number of rows) raises
`ServingError`, whose message names the URL and the cause. REST needs only the
standard library; gRPC needs `pip install .[serving]`.
"""

import base64
import json
import urllib.error
import urllib.request
from typing import Dict, List, Sequence, Union

Text = Union[str, bytes]


class ServingError(RuntimeError):
  """The server could not be reached, refused the request, or answered something other than one row per message."""


def _result(scores: Sequence[float], labels: Sequence[int], classes: Sequence[str]) -> Dict:
  return {"scores": dict(zip(classes, (float(s) for s in scores))),
          "labels": dict(zip(classes, (int(v) for v in labels))),
          "predicted": [c for c, v in zip(classes, labels) if int(v) == 1]}


def _json_text(message: Text):
  """A JSON value for one message: a string, or {"b64": ...} for bytes that are not UTF-8."""
  if isinstance(message, str):
    return message
  try:
    return message.decode("utf-8")
  except UnicodeDecodeError:
    return {"b64": base64.b64encode(message).decode("ascii")}  # standard, not URL-safe, base64


def predict_rest(texts: Sequence[Text], url: str = "http://localhost:8501", model: str = "disaster",
                 timeout: float = 10.0) -> List[Dict]:
  """Calls TF Serving's REST Predict API (row format).

  Raises:
    ServingError: naming the URL and the cause.
  """
  body = json.dumps({"signature_name": "serving_default", "instances": [_json_text(t) for t in texts]})
  request = urllib.request.Request(f"{url.rstrip('/')}/v1/models/{model}:predict", data=body.encode("utf-8"),
                                   headers={"Content-Type": "application/json"})
  where = request.full_url
  try:
    with urllib.request.urlopen(request, timeout=timeout) as response:
      answer = response.read()
  except urllib.error.HTTPError as e:
    raise ServingError(f"{where}: HTTP {e.code}: {e.read().decode('utf-8', 'replace')[:500]}") from None
  except urllib.error.URLError as e:  # refused, unknown host, time-out while connecting
    raise ServingError(f"{where}: cannot reach the server ({e.reason})") from None
  except (TimeoutError, OSError) as e:  # time-out or reset while reading
    raise ServingError(f"{where}: no complete answer within {timeout:g} s ({e})") from None
  try:
    predictions = json.loads(answer)["predictions"]
    results = [_result(p["scores"], p["labels"], p["classes"]) for p in predictions]
  except (ValueError, KeyError, TypeError) as e:
    raise ServingError(f"{where}: the answer is not TF Serving's predict format ({type(e).__name__}: {e}); it "
                       f"began {answer[:200]!r}") from None
  return _one_row_each(results, texts, where)


def predict_grpc(texts: Sequence[Text], target: str = "localhost:8500", model: str = "disaster",
                 timeout: float = 10.0) -> List[Dict]:
  """Calls TF Serving's gRPC Predict API. Keep batches under the 4 MB message limit.

  Raises:
    ServingError: naming the target, model and the gRPC status.
  """
  import grpc  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=import-outside-toplevel
  from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=import-outside-toplevel
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  request.model_spec.signature_name = "serving_default"
  request.inputs["text"].CopyFrom(tf.make_tensor_proto([t.encode("utf-8") if isinstance(t, str) else t
                                                        for t in texts], tf.string))
  where = f"grpc://{target} (model {model})"
  try:
    with grpc.insecure_channel(target) as channel:
      response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=timeout)
  except grpc.RpcError as e:
    raise ServingError(f"{where}: {e.code().name}: {e.details()}") from None
  try:
    out = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
    results = [_result(s, l, [c.decode("utf-8") for c in cls])
               for s, l, cls in zip(out["scores"], out["labels"], out["classes"])]
  except KeyError as e:
    raise ServingError(f"{where}: the answer lacks the output {e}; is this a disaster_tf export?") from None
  return _one_row_each(results, texts, where)


def _one_row_each(results: List[Dict], texts: Sequence[Text], where: str) -> List[Dict]:
  if len(results) != len(texts):
    raise ServingError(f"{where}: {len(results)} rows answered for {len(texts)} messages")
  return results
