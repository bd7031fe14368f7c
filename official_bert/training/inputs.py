"""tf.data pipelines over TFRecord files, shaped for tf.distribute and XLA.

`tfrecord_dataset` is generic (pre-training and the fine-tuning scripts both use it): per-worker
file sharding, parallel interleave over files, seeded shuffle, repeat, static-shape batches
(drop_remainder, so TPU/XLA see one shape), prefetch. Everything is seeded and deterministic, so
the training loop can restore the input position on resume by skipping the batches already used.

The tasks' dataset functions (official_bert.tasks) use it for training; eval / predict pipelines,
which read once and pad the last batch, are official_bert.data.records.eval_dataset.
"""

import tensorflow as tf
from absl import logging

AUTOTUNE = tf.data.AUTOTUNE


def tfrecord_dataset(input_files, decode_fn, batch_size, is_training, input_context=None,
                     seed=12345, shuffle_buffer=100, cycle_length=4, drop_remainder=True,
                     repeat=None, filter_fn=None):
  """Batches of `decode_fn(serialized)` from TFRecord files.

  Args:
    input_files: list of file paths (local or gs://), e.g. from utils.expand_globs.
    decode_fn: serialized tf.Example [] -> dict of tensors.
    batch_size: per-replica batch size (input_context.get_per_replica_batch_size(global)).
    is_training: shuffle files and records (seeded) and repeat forever.
    input_context: tf.distribute.InputContext; each input pipeline (worker) reads its own files.
    filter_fn: optional decoded example -> bool scalar; False drops the example.
  """
  files = list(input_files)
  ds = tf.data.Dataset.from_tensor_slices(files)
  num_pipelines = input_context.num_input_pipelines if input_context else 1
  pipeline_id = input_context.input_pipeline_id if input_context else 0
  shard_records = False
  if num_pipelines > 1:
    if len(files) >= num_pipelines:
      ds = ds.shard(num_pipelines, pipeline_id)
    else:
      # Too few files for file-level sharding: every worker reads all and keeps 1/N records.
      logging.warning("%d input files for %d input pipelines: sharding by record; give at least "
                      "as many files as workers for file-level sharding", len(files),
                      num_pipelines)
      shard_records = True
  repeat = is_training if repeat is None else repeat
  if is_training:
    ds = ds.repeat().shuffle(len(files), seed=seed)
  elif repeat:
    ds = ds.repeat()
  ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=max(1, min(cycle_length, len(files))),
                     num_parallel_calls=AUTOTUNE, deterministic=True)
  if shard_records:
    ds = ds.shard(num_pipelines, pipeline_id)
  if is_training:
    ds = ds.shuffle(shuffle_buffer, seed=seed)
  ds = ds.map(decode_fn, num_parallel_calls=AUTOTUNE, deterministic=True)
  if filter_fn is not None:
    ds = ds.filter(filter_fn)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  options = tf.data.Options()
  options.deterministic = True
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
  return ds.with_options(options).prefetch(AUTOTUNE)
