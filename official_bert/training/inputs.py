"""tf.data pipelines over TFRecord files, shaped for tf.distribute and XLA.

`tfrecord_dataset` is generic (pre-training and the fine-tuning scripts both use it): per-replica
file sharding, parallel interleave over files, seeded shuffle, repeat, static-shape batches
(drop_remainder, so TPU/XLA see one shape), prefetch. Everything is seeded and deterministic, so
the training loop can restore the input position on resume by skipping the batches already used.

`pretraining_dataset` decodes GR's pre-training TFRecords (schema: official_bert.data.pretraining).
"""

import tensorflow as tf
from absl import logging

from official_bert import utils
from official_bert.data import pretraining
from official_bert.training import distribute

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
    input_context: tf.distribute.InputContext; each replica reads its own files
      (distribute.replica_shards), wherever it runs.
    filter_fn: optional decoded example -> bool scalar; False drops the example.
  """
  files = list(input_files)
  num_shards, shard_ids = distribute.replica_shards(input_context)
  ds = distribute.round_robin([
      _shard(files, num_shards, i, decode_fn, batch_size, is_training, seed, shuffle_buffer,
             cycle_length, drop_remainder, repeat, filter_fn) for i in shard_ids])
  options = tf.data.Options()
  options.deterministic = True
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
  return ds.with_options(options).prefetch(AUTOTUNE)


def _shard(files, num_shards, shard_id, decode_fn, batch_size, is_training, seed, shuffle_buffer,
           cycle_length, drop_remainder, repeat, filter_fn):
  """The batches of one replica: its files (or, with too few files, its 1/N of the records)."""
  ds = tf.data.Dataset.from_tensor_slices(files)
  shard_records = False
  if num_shards > 1:
    if len(files) >= num_shards:
      ds = ds.shard(num_shards, shard_id)
    else:
      logging.warning("%d input files for %d replicas: sharding by record; give at least as "
                      "many files as replicas for file-level sharding", len(files), num_shards)
      shard_records = True
  repeat = is_training if repeat is None else repeat
  if is_training:
    ds = ds.repeat().shuffle(len(files), seed=seed)
  elif repeat:
    ds = ds.repeat()
  ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=max(1, min(cycle_length, len(files))),
                     num_parallel_calls=AUTOTUNE, deterministic=True)
  if shard_records:
    ds = ds.shard(num_shards, shard_id)
  if is_training:
    ds = ds.shuffle(shuffle_buffer, seed=seed)
  ds = ds.map(decode_fn, num_parallel_calls=AUTOTUNE, deterministic=True)
  if filter_fn is not None:
    ds = ds.filter(filter_fn)
  return ds.batch(batch_size, drop_remainder=drop_remainder)


def check_pretraining_files(input_files, max_seq_length, max_predictions_per_seq):
  """Reads the first record and fails clearly if its lengths disagree with the flags."""
  path = input_files[0]
  try:
    first = next(iter(tf.data.TFRecordDataset(path).take(1)))
  except StopIteration:
    raise ValueError(f"{path}: no records; check --input_file") from None
  example = tf.train.Example.FromString(first.numpy())
  feats = example.features.feature
  expected = pretraining.feature_spec(max_seq_length, max_predictions_per_seq)
  missing = sorted(set(expected) - set(feats))
  if missing:
    raise ValueError(f"{path}: not a pre-training TFRecord (missing features {missing}); "
                     "make it with data_prep's create_pretraining_data")
  for key, flag, want in (("input_ids", "max_seq_length", max_seq_length),
                          ("masked_lm_positions", "max_predictions_per_seq",
                           max_predictions_per_seq)):
    got = len(feats[key].int64_list.value)
    if got != want:
      raise ValueError(
          f"{path}: {key} has length {got} but --{flag}={want}; pass --{flag}={got} or "
          f"regenerate the data with --{flag}={want}")


def pretraining_dataset(input_file, batch_size, max_seq_length, max_predictions_per_seq,
                        is_training, input_context=None, seed=12345, repeat=None,
                        filter_fn=None):
  """GR's pre-training input_fn: batches of int32 feature dicts with static shapes."""
  files = utils.expand_globs(input_file) if isinstance(input_file, str) else list(input_file)

  def decode(serialized):  # the schema is owned by official_bert.data.pretraining
    return pretraining.parse_example(serialized, max_seq_length, max_predictions_per_seq)

  # GR repeats eval data too and evaluates a fixed number of steps (max_eval_steps).
  return tfrecord_dataset(files, decode, batch_size, is_training, input_context, seed=seed,
                          repeat=True if repeat is None else repeat, filter_fn=filter_fn)
