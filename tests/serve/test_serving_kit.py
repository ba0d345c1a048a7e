"""The deployment files under serving/ parse as what TF Serving reads."""

import os
import re

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from disaster_tf.serve import warmup
from tests import fixtures

SERVING = os.path.join(fixtures.ROOT, "serving")


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
  assert tuple(allowed) == warmup.BATCH_SIZES  # the export warms up every shape batching may form


def _monitoring_config_class():
  """TF Serving's MonitoringConfig (tensorflow_serving/config/monitoring_config.proto), which the
  tensorflow-serving-api wheel does not ship, rebuilt field for field so that the file is parsed strictly."""
  proto = descriptor_pb2.FileDescriptorProto(name="monitoring_config.proto", package="tensorflow.serving",
                                             syntax="proto3")
  prometheus = proto.message_type.add(name="PrometheusConfig")
  prometheus.field.add(name="enable", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
                       label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
  prometheus.field.add(name="path", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                       label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
  monitoring = proto.message_type.add(name="MonitoringConfig")
  monitoring.field.add(name="prometheus_config", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                       type_name=".tensorflow.serving.PrometheusConfig",
                       label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
  pool = descriptor_pool.DescriptorPool()
  pool.Add(proto)
  return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


def test_monitoring_config_exposes_prometheus_metrics_where_the_serving_guide_says():
  with open(os.path.join(SERVING, "monitoring.config")) as f:
    config = text_format.Parse(f.read(), _monitoring_config_class()())
  assert config.prometheus_config.enable
  with open(os.path.join(fixtures.ROOT, "docs", "serving.md")) as f:
    guide = f.read()
  assert f"localhost:8501{config.prometheus_config.path}" in guide
  assert "--monitoring_config_file=/config/monitoring.config" in guide
