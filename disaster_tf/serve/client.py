"""A small client for the exported model on TF Serving (REST or gRPC).

  from disaster_tf.serve import client
  client.predict_rest(["We need water in Leogane"], "http://localhost:8501", "disaster")
  with client.GrpcClient("localhost:8500", "disaster") as c:   # one channel for many calls
    c.predict(["We need water in Leogane"])
  client.status_rest("http://localhost:8501", "disaster")       # {1: "AVAILABLE"}

Each predict returns, per message, {"scores": {category: probability},
"labels": {category: label}, "predicted": [categories whose label is 1],
"related": "no" | "yes" | "unsure"}, one entry per message sent (and, from
the explain signature, "explanation": {category: [[word, contribution], ...]}). `related` is
the only category with three labels: "unsure" (label 2) is not a positive, so
it is not in `predicted`; `related` says it. Anything else (a refused connection, a time-out, an HTTP or
gRPC error, an answer that is not JSON or has another number of rows) raises
`ServingError`, whose message names the URL and the cause. REST needs only the
standard library; gRPC needs `pip install .[serving]`.
"""

import base64
import json
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Sequence, Union

Text = Union[str, bytes]


class ServingError(RuntimeError):
  """The server could not be reached, refused the request, or answered something other than one row per message."""


RELATED_WORDS = {0: "no", 1: "yes", 2: "unsure"}  # `related`'s three labels


MIN_CONTRIBUTION = 0.01  # a word that moves a score by less than a point did not make the category: not shown


LANGUAGE_OUTPUTS = ("language", "language_score", "reads_language")  # a language gate's, where the export has one


def result_row(scores: Sequence[float], labels: Sequence[int], classes: Sequence[str],
               top_words: Optional[Sequence[Sequence[Text]]] = None,
               top_contributions: Optional[Sequence[Sequence[float]]] = None, *,
               language: Optional[Text] = None, language_score: Optional[float] = None,
               reads_language: Optional[bool] = None) -> Dict:
  """One message's result (see the module docstring) from its scores, labels and the class names; with the
  explain signature's top words [36, k] and their contributions [36, k], also its `explanation`; with an
  export's language gate, its `language` ("english" or "other"), `language_score` (P(other)) and, from an
  export that says it, `reads_language` (whether the model reads that language)."""
  by_class = dict(zip(classes, (int(v) for v in labels)))
  row = {"scores": dict(zip(classes, (float(s) for s in scores))), "labels": by_class,
         "predicted": [c for c, v in by_class.items() if v == 1],
         "related": RELATED_WORDS.get(by_class.get("related"), "unknown")}
  if top_words is not None:
    row["explanation"] = explanation(row["predicted"], classes, top_words, top_contributions)
  if language is not None:
    row["language"] = language.decode("utf-8") if isinstance(language, bytes) else str(language)
    row["language_score"] = float(language_score)
  if reads_language is not None:
    row["reads_language"] = bool(reads_language)
  return row


def language_of(outputs: Dict, i: int) -> Dict:
  """The `language`, `language_score` and `reads_language` keywords of row `i` for `result_row`, from an
  export's outputs (none from an export without a language gate; no `reads_language` from an older one)."""
  return {key: outputs[key][i] for key in LANGUAGE_OUTPUTS if key in outputs}


def explanation(predicted: Sequence[str], classes: Sequence[str], top_words: Sequence[Sequence[Text]],
                top_contributions: Sequence[Sequence[float]]) -> Dict[str, List[List]]:
  """{category: [[word, contribution], ...]} for each predicted category: the words of the message whose removal
  lowers its score by MIN_CONTRIBUTION or more, largest first (explain.py); [] when no single word decides it."""
  by_class = dict(zip(classes, zip(top_words, top_contributions)))
  return {c: [[w.decode("utf-8", "replace") if isinstance(w, bytes) else w, round(float(v), 4)]
              for w, v in zip(*by_class[c]) if w and v >= MIN_CONTRIBUTION] for c in predicted}


def _json_text(message: Text):
  """A JSON value for one message: a string, or {"b64": ...} for bytes that are not UTF-8."""
  if isinstance(message, str):
    return message
  try:
    return message.decode("utf-8")
  except UnicodeDecodeError:
    return {"b64": base64.b64encode(message).decode("ascii")}  # standard, not URL-safe, base64


def predict_rest(texts: Sequence[Text], url: str = "http://localhost:8501", model: str = "disaster",
                 timeout: float = 10.0, explain: bool = False) -> List[Dict]:
  """Calls TF Serving's REST Predict API (row format); with `explain`, the explain signature (each result then
  has its `explanation`: see `explanation`).

  Raises:
    ServingError: naming the URL and the cause.
  """
  signature = "explain" if explain else "serving_default"
  body = json.dumps({"signature_name": signature, "instances": [_json_text(t) for t in texts]})
  request = urllib.request.Request(f"{url.rstrip('/')}/v1/models/{model}:predict", data=body.encode("utf-8"),
                                   headers={"Content-Type": "application/json"})
  where = request.full_url
  answer = _http(request, where, timeout)
  try:
    predictions = json.loads(answer)["predictions"]
    results = [result_row(p["scores"], p["labels"], p["classes"], *((p["top_words"], p["top_contributions"])
                                                                    if explain else ()),
                          **language_of({k: [v] for k, v in p.items()}, 0)) for p in predictions]
  except (ValueError, KeyError, TypeError) as e:
    raise ServingError(f"{where}: the answer is not TF Serving's predict format ({type(e).__name__}: {e}); it "
                       f"began {answer[:200]!r}") from None
  return _one_row_each(results, texts, where)


def status_rest(url: str = "http://localhost:8501", model: str = "disaster", timeout: float = 10.0) -> Dict[int, str]:
  """TF Serving's model status over REST: {version: state}, e.g. {1: "AVAILABLE"}.

  Raises:
    ServingError: unreachable, an unknown model, or an answer in another format.
  """
  where = f"{url.rstrip('/')}/v1/models/{model}"
  answer = _http(where, where, timeout)
  try:
    return {int(v["version"]): v["state"] for v in json.loads(answer)["model_version_status"]}
  except (ValueError, KeyError, TypeError) as e:
    raise ServingError(f"{where}: the answer is not TF Serving's model status ({type(e).__name__}: {e})") from None


def _http(request: Union[str, urllib.request.Request], where: str, timeout: float) -> bytes:
  """The body of an HTTP answer; every failure on the way is a ServingError naming `where`."""
  try:
    with urllib.request.urlopen(request, timeout=timeout) as response:
      return response.read()
  except urllib.error.HTTPError as e:
    raise ServingError(f"{where}: HTTP {e.code}: {e.read().decode('utf-8', 'replace')[:500]}") from None
  except urllib.error.URLError as e:  # refused, unknown host, time-out while connecting
    raise ServingError(f"{where}: cannot reach the server ({e.reason})") from None
  except OSError as e:  # time-out or reset while reading (TimeoutError is an OSError)
    raise ServingError(f"{where}: no complete answer within {timeout:g} s ({e})") from None


class GrpcClient:
  """TF Serving's gRPC API over one channel, kept for the client's life (a channel per call reconnects each time).

  Args:
    target: host:port of the model server's gRPC port.
    model: the model name.
    timeout: seconds per call.
    check_status: ask the server at once whether a version of `model` is
      AVAILABLE, so that a wrong name or a model still loading fails here.
  """

  def __init__(self, target: str = "localhost:8500", model: str = "disaster", timeout: float = 10.0,
               check_status: bool = True):
    import grpc  # pylint: disable=import-outside-toplevel
    from tensorflow_serving.apis import model_service_pb2_grpc  # pylint: disable=import-outside-toplevel
    from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=import-outside-toplevel
    self.model, self.timeout, self.where = model, timeout, f"grpc://{target} (model {model})"
    self._channel = grpc.insecure_channel(target)
    self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
    self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)
    if check_status:
      try:
        states = self.status()
        if "AVAILABLE" not in states.values():
          raise ServingError(f"{self.where}: no version is AVAILABLE ({states})")
      except ServingError:
        self.close()
        raise

  def status(self) -> Dict[int, str]:
    """{version: state} from the server's ModelService, e.g. {1: "AVAILABLE"}."""
    import grpc  # pylint: disable=import-outside-toplevel
    from tensorflow_serving.apis import get_model_status_pb2  # pylint: disable=import-outside-toplevel
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = self.model
    try:
      response = self._models.GetModelStatus(request, timeout=self.timeout)
    except grpc.RpcError as e:
      raise ServingError(f"{self.where}: {e.code().name}: {e.details()}") from None
    state_name = get_model_status_pb2.ModelVersionStatus.State.Name
    return {int(v.version): state_name(v.state) for v in response.model_version_status}

  def predict(self, texts: Sequence[Text]) -> List[Dict]:
    """Calls the Predict API. Keep batches under gRPC's 4 MB message limit.

    Raises:
      ServingError: naming the target, model and the gRPC status.
    """
    import grpc  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from tensorflow_serving.apis import predict_pb2  # pylint: disable=import-outside-toplevel
    request = predict_pb2.PredictRequest()
    request.model_spec.name = self.model
    request.model_spec.signature_name = "serving_default"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto([t.encode("utf-8") if isinstance(t, str) else t
                                                          for t in texts], tf.string))
    try:
      response = self._predictions.Predict(request, timeout=self.timeout)
    except grpc.RpcError as e:
      raise ServingError(f"{self.where}: {e.code().name}: {e.details()}") from None
    try:
      out = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
      results = [result_row(s, l, [c.decode("utf-8") for c in cls], **language_of(out, i))
                 for i, (s, l, cls) in enumerate(zip(out["scores"], out["labels"], out["classes"]))]
    except KeyError as e:
      raise ServingError(f"{self.where}: the answer lacks the output {e}; is this a disaster_tf export?") from None
    return _one_row_each(results, texts, self.where)

  def close(self) -> None:
    self._channel.close()

  def __enter__(self) -> "GrpcClient":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def predict_grpc(texts: Sequence[Text], target: str = "localhost:8500", model: str = "disaster",
                 timeout: float = 10.0) -> List[Dict]:
  """One Predict call on a channel of its own; for many calls, keep a `GrpcClient`.

  Raises:
    ServingError: naming the target, model and the gRPC status.
  """
  with GrpcClient(target, model, timeout, check_status=False) as grpc_client:
    return grpc_client.predict(texts)


def _one_row_each(results: List[Dict], texts: Sequence[Text], where: str) -> List[Dict]:
  if len(results) != len(texts):
    raise ServingError(f"{where}: {len(results)} rows answered for {len(texts)} messages")
  return results
