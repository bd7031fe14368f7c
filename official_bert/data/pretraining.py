"""The pre-training record schema (GR's create_pretraining_data features) and its parsing.

The one place that names the features and their shapes; the rest of the pre-training data code:
  * `wire_format`: protobuf / varint / TFRecord bytes of these records, without TensorFlow,
  * `gr_instances`: GR's input rules and instance logic (compat mode, GR's exact records),
  * `scale_instances`: the same rules vectorised per chunk (scale mode and Beam),
  * `pretraining_pipeline` and `beam`: the drivers.
Dimension legend: S = max_seq_length, P = max_predictions_per_seq.
"""

# GR's feature order (the order GR logs them in); the serializer sorts them, as protobuf does.
FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions",
                 "masked_lm_ids", "masked_lm_weights", "next_sentence_labels")


def feature_spec(max_seq_length, max_predictions_per_seq):
  """name -> tf.io.FixedLenFeature for one pre-training tf.train.Example (GR's schema)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  s, p = max_seq_length, max_predictions_per_seq
  return {
      "input_ids": tf.io.FixedLenFeature([s], tf.int64),
      "input_mask": tf.io.FixedLenFeature([s], tf.int64),
      "segment_ids": tf.io.FixedLenFeature([s], tf.int64),
      "masked_lm_positions": tf.io.FixedLenFeature([p], tf.int64),
      "masked_lm_ids": tf.io.FixedLenFeature([p], tf.int64),
      "masked_lm_weights": tf.io.FixedLenFeature([p], tf.float32),
      "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
  }


def parse_example(serialized, max_seq_length, max_predictions_per_seq):
  """Serialized Example(s) -> dict of tensors; int64 cast to int32 as GR's `_decode_record`.

  Works on a scalar string ([S], [P], [1] features) or a batch ([B, S], ...).
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  spec = feature_spec(max_seq_length, max_predictions_per_seq)
  if serialized.shape.rank == 0:
    example = tf.io.parse_single_example(serialized, spec)
  else:
    example = tf.io.parse_example(serialized, spec)
  return {name: tf.cast(t, tf.int32) if t.dtype == tf.int64 else t
          for name, t in example.items()}

