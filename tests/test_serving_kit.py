"""The deployment files under serving/ parse as what TF Serving reads."""

import os
import re

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

SERVING = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "serving")


def test_models_config_is_a_model_server_config():
  with open(os.path.join(SERVING, "models.config")) as f:
    config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
  (model,) = config.model_config_list.config
  assert model.name == "disaster" and model.base_path == "/models/disaster"
  assert model.model_platform == "tensorflow" and model.model_version_policy.latest.num_versions == 1


def test_batching_parameters_are_consistent():
  # The BatchingParameters proto is not in the tensorflow-serving-api wheel: check the text by hand.
  with open(os.path.join(SERVING, "batching_parameters.txt")) as f:
    entries = re.findall(r"^(\w+) \{ value: (\d+) \}$", f.read(), flags=re.M)
  known = {"max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
           "allowed_batch_sizes", "pad_variable_length_inputs"}
  assert entries and {k for k, _ in entries} <= known
  values = {k: int(v) for k, v in entries}
  allowed = [int(v) for k, v in entries if k == "allowed_batch_sizes"]
  assert allowed == sorted(set(allowed)) and allowed[-1] == values["max_batch_size"]
