"""TF Serving's warmup requests: a TFRecord of PredictionLogs that the server replays when it loads a version.

Each request of every batch size TF Serving's batching may form, so that the
first real request of any shape meets a traced graph. savedmodel.py writes the
file into an export's assets.extra/ and names the signatures to warm.
"""

from typing import Sequence

import tensorflow as tf
from absl import logging

# Written for warmup only, cycled to fill each batch.
TEXTS = (
    "We need water and food in Leogane, please help",
    "Is the hurricane over? The roads are flooded near the river",
    "People are trapped under a collapsed building near the hospital",
    "Fire in the market, several shops destroyed",
    "We have no tents and it is cold at night",
    "Where can we find medicine for the children?",
    "Thank you for the information",
    "The earthquake destroyed our house, my family sleeps outside",
)
# Every batch size TF Serving's batching may form: serving/batching_parameters.txt's
# allowed_batch_sizes (tests/serve/test_serving_kit.py keeps the two in step).
BATCH_SIZES = (1, 8, 32, 64)


def write(path: str, predict_signatures: Sequence[str], classify_signature: str) -> None:
  """Writes, for each of BATCH_SIZES, a Predict request to each of `predict_signatures` (input `text`) and a
  Classify request to `classify_signature` (tf.Examples with a `text` feature).

  Without the tensorflow-serving-api package, warns and writes nothing.
  """
  try:
    from tensorflow_serving.apis import classification_pb2  # pylint: disable=import-outside-toplevel
    from tensorflow_serving.apis import predict_pb2  # pylint: disable=import-outside-toplevel
    from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=import-outside-toplevel
  except ImportError:
    logging.warning("tensorflow-serving-api is not installed: no warmup requests written, so TF Serving's "
                    "first requests will be slow. Install it with: pip install .[serving]")
    return
  with tf.io.TFRecordWriter(path) as writer:
    for size in BATCH_SIZES:
      texts = [TEXTS[i % len(TEXTS)] for i in range(size)]
      logs = []
      for key in predict_signatures:
        predict = predict_pb2.PredictRequest()
        predict.model_spec.signature_name = key
        predict.inputs["text"].CopyFrom(tf.make_tensor_proto(texts, tf.string))
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=predict)))
      classify = classification_pb2.ClassificationRequest()
      classify.model_spec.signature_name = classify_signature
      for t in texts:
        classify.input.example_list.examples.add().features.feature["text"].bytes_list.value.append(t.encode())
      logs.append(prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(request=classify)))
      for log in logs:
        writer.write(log.SerializeToString())
