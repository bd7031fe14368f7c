"""The record / input layer shared by the fine-tuning tasks: tf.train.Example features, their
parsing, and the one padding convention of eval / predict batches.

Records hold int64 lists (and float32 for a regression label); parsing casts int64 to int32, what
the model and TPUs take. Eval and predict read every record once in file order, and the last batch
is padded with zero rows to the full batch size (static shapes for TPU / XLA). Every row carries
`is_real_example`: 1 for a record, 0 for padding (GR's classifier feature; a record that has it,
as GR's classifier records do, keeps its own value).
"""

import tensorflow as tf

IS_REAL = "is_real_example"


def int_feature(values):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def float_feature(values):
  return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def serialize(features):
  """{name: tf.train.Feature} (in the order given) -> a serialized tf.train.Example."""
  return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def int_spec(seq_keys=(), seq_length=None, scalar_keys=()):
  """A parsing spec of int64 features: [seq_length] for seq_keys, [] for scalar_keys."""
  spec = {k: tf.io.FixedLenFeature([seq_length], tf.int64) for k in seq_keys}
  spec.update({k: tf.io.FixedLenFeature([], tf.int64) for k in scalar_keys})
  return spec


def decode(record, spec):
  """Parses one serialized record with `spec`; int64 -> int32."""
  example = tf.io.parse_single_example(record, spec)
  return {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in example.items()}


def mark_real(features):
  """Adds is_real_example=1 to a record's features unless the record has its own."""
  if IS_REAL in features:
    return features
  return dict(features, **{IS_REAL: tf.constant(1, tf.int32)})


def pad_to_batch(batch, batch_size):
  """Pads a (possibly short) batch with zero rows up to `batch_size` (is_real_example 0 there)."""
  n = tf.shape(next(iter(batch.values())))[0]
  out = {}
  for k, v in batch.items():
    paddings = [[0, batch_size - n]] + [[0, 0]] * (len(v.shape) - 1)
    out[k] = tf.ensure_shape(tf.pad(v, paddings), [batch_size] + v.shape[1:].as_list())
  return out


def trim_padding(batch, multiple=1):
  """Cuts a batch's [B, S] features to its longest real sequence, [B, S'] with S' <= S.

  Exact for the encoder: padded keys get -10000 before the softmax, whose exp is 0 in float32,
  so no real token's output depends on how much padding follows it. `multiple` rounds S' up
  (at most to S), so that XLA compiles one program per bucket of lengths, not per length.
  """
  longest = tf.reduce_max(tf.reduce_sum(batch["input_mask"], axis=1))
  if multiple > 1:
    longest = tf.minimum((longest + multiple - 1) // multiple * multiple,
                         tf.shape(batch["input_mask"])[1])
  return {k: (v[:, :longest] if k in ("input_ids", "input_mask", "segment_ids") else v)
          for k, v in batch.items()}


def eval_batches(dataset, batch_size):
  """Decoded records -> batches of `batch_size` in order, the last one padded and marked."""
  return dataset.map(mark_real).batch(batch_size).map(lambda b: pad_to_batch(b, batch_size))


def eval_dataset(input_files, decode_fn, batch_size, input_context=None):
  """Eval / predict pipeline over TFRecord files: one pass, file order, padded last batch.

  With several input pipelines each reads its share of the records (use one_device / mirrored /
  tpu for prediction, where every batch reaches one host).
  """
  d = tf.data.TFRecordDataset(input_files)
  if input_context is not None and input_context.num_input_pipelines > 1:
    d = d.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
  d = d.map(decode_fn, num_parallel_calls=tf.data.AUTOTUNE)
  return eval_batches(d, batch_size).prefetch(tf.data.AUTOTUNE)
