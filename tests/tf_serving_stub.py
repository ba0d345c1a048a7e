"""A small stand-in for tensorflow_model_server, for the client tests.

The real binary cannot be installed from PyPI or Debian (tensorflow/serving#657),
so this serves a SavedModel with the same wire formats: gRPC Predict through
tensorflow-serving-api's real protos and service stubs, and REST Predict
(`/v1/models/<name>:predict`, row format, `{"b64": ...}` for bytes) as TF
Serving documents it, and the model status (gRPC ModelService, REST GET
/v1/models/<name>) for version 1, in the state the test sets. It only loads
the model and calls the named signature; it does not batch, version, or warm up.
"""

import base64
import json
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc


class Stub:
  """Serves `export_dir` as model `name` on loopback ports chosen by the OS."""

  def __init__(self, export_dir: str, name: str):
    self.name = name
    self.signatures = tf.saved_model.load(export_dir).signatures
    self.grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_Predictions(self), self.grpc_server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(_Models(self), self.grpc_server)
    self.state = "AVAILABLE"  # what the status APIs report for version 1
    self.predict_channels = set()  # peers of Predict calls: one per client channel
    self.grpc_port = self.grpc_server.add_insecure_port("127.0.0.1:0")
    self.http = ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(self))
    self.rest_port = self.http.server_address[1]

  def __enter__(self):
    self.grpc_server.start()
    threading.Thread(target=self.http.serve_forever, daemon=True).start()
    return self

  def __exit__(self, *exc):
    self.http.shutdown()
    self.http.server_close()
    self.grpc_server.stop(grace=None)

  def call(self, signature_name: str, inputs):
    fn = self.signatures[signature_name or "serving_default"]
    return {k: v.numpy() for k, v in fn(**inputs).items()}


class _Predictions(prediction_service_pb2_grpc.PredictionServiceServicer):

  def __init__(self, stub):
    self.stub = stub

  def Predict(self, request, context):  # pylint: disable=invalid-name
    self.stub.predict_channels.add(context.peer())
    if request.model_spec.name != self.stub.name:
      context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request.model_spec.name}")
    inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
    outputs = self.stub.call(request.model_spec.signature_name, inputs)
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for k, v in outputs.items():
      response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
    return response


class _Models(model_service_pb2_grpc.ModelServiceServicer):

  def __init__(self, stub):
    self.stub = stub

  def GetModelStatus(self, request, context):  # pylint: disable=invalid-name
    if request.model_spec.name != self.stub.name:
      context.abort(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {request.model_spec.name}")
    response = get_model_status_pb2.GetModelStatusResponse()
    version = response.model_version_status.add()
    version.version = 1
    version.state = get_model_status_pb2.ModelVersionStatus.State.Value(self.stub.state)
    return response


def _decode(value):
  if isinstance(value, dict):
    return base64.b64decode(value["b64"])
  return value.encode("utf-8")


def _json_value(v):
  if getattr(v, "ndim", 0) > 0:  # a row of a [batch, a, b] output: nested lists, as TF Serving writes them
    return [_json_value(x) for x in v]
  if isinstance(v, bytes):
    try:
      return v.decode("utf-8")
    except UnicodeDecodeError:
      return {"b64": base64.b64encode(v).decode("ascii")}
  return v.item() if hasattr(v, "item") else v


def _rest_handler(stub):
  class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
      pass

    def _reply(self, code, body):
      data = json.dumps(body).encode("utf-8")
      self.send_response(code)
      self.send_header("Content-Type", "application/json")
      self.send_header("Content-Length", str(len(data)))
      self.end_headers()
      self.wfile.write(data)

    def do_GET(self):  # pylint: disable=invalid-name
      if self.path != f"/v1/models/{stub.name}":
        return self._reply(404, {"error": f"Could not find any versions of model {self.path}"})
      return self._reply(200, {"model_version_status": [{"version": "1", "state": stub.state,
                                                          "status": {"error_code": "OK", "error_message": ""}}]})

    def do_POST(self):  # pylint: disable=invalid-name
      if self.path != f"/v1/models/{stub.name}:predict":
        return self._reply(404, {"error": f"Servable not found for request: {self.path}"})
      body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
      texts = [_decode(v) for v in body["instances"]]
      outputs = stub.call(body.get("signature_name"), {"text": tf.constant(texts, tf.string)})
      rows = [{k: _json_value(v[i]) for k, v in outputs.items()} for i in range(len(texts))]
      return self._reply(200, {"predictions": rows})
  return Handler
