"""tf.data pipelines over TFRecord files, shaped for tf.distribute and XLA.

`tfrecord_dataset` is generic (pre-training and the fine-tuning scripts both use it): per-worker
file sharding, parallel interleave over files, seeded shuffle, repeat, static-shape batches
(drop_remainder, so TPU/XLA see one shape), prefetch. Everything is seeded and deterministic, so
the training loop can restore the input position on resume by skipping the batches already used.

The tasks' dataset functions (official_bert.tasks) use it for training; eval / predict pipelines,
which read once and pad the last batch, are official_bert.data.records.eval_dataset.

Bad data names its file: with `vocab_size`, every record's ids are checked in the pipeline (an
id >= vocab_size would make the embedding lookup fail without a file name on CPU, and read zeros
silently on GPU); a truncated or corrupt record file is found by `user_error_from` when TensorFlow
raises DataLossError (which names no file).
"""

import re

import tensorflow as tf
from absl import logging

from official_bert import errors
from official_bert.training import distribute

AUTOTUNE = tf.data.AUTOTUNE

# Marks the in-graph id check's message, so that user_error_from recognises it.
_ID_CHECK = "official_bert: token id >= vocab_size"
VOCAB_FIX = ("the data was made with a larger vocab than the model's: regenerate it with the "
              "model's vocab.txt, or use the bert_config.json that matches the vocab")
# Every TFRecord file a pipeline of this process reads, for naming a corrupt one.
_FILES_READ = []


def tfrecord_dataset(input_files, decode_fn, batch_size, is_training, input_context=None,
                     seed=12345, shuffle_buffer=100, cycle_length=4, drop_remainder=True,
                     repeat=None, filter_fn=None, vocab_size=None):
  """Batches of `decode_fn(serialized)` from TFRecord files.

  Args:
    input_files: list of file paths (local or gs://), e.g. from utils.expand_globs.
    decode_fn: serialized tf.Example [] -> dict of tensors.
    batch_size: per-replica batch size (input_context.get_per_replica_batch_size(global)).
    is_training: shuffle files and records (seeded) and repeat forever.
    input_context: tf.distribute.InputContext; each replica reads its own files
      (distribute.replica_shards), wherever it runs.
    filter_fn: optional decoded example -> bool scalar; False drops the example.
    vocab_size: if given, `input_ids` (and `masked_lm_ids`) of every record must be below it;
      a larger id stops the run with an error naming the file (see user_error_from).
  """
  files = list(input_files)
  _FILES_READ.extend(f for f in files if f not in _FILES_READ)
  if vocab_size is not None:
    plain_decode = decode_fn

    def decode_fn(path, serialized):  # pylint: disable=function-redefined
      return _check_ids(path, plain_decode(serialized), vocab_size)

  num_shards, shard_ids = distribute.replica_shards(input_context)
  ds = distribute.round_robin([
      _shard(files, num_shards, i, decode_fn, batch_size, is_training, seed, shuffle_buffer,
             cycle_length, drop_remainder, repeat, filter_fn, with_path=vocab_size is not None)
      for i in shard_ids])
  options = tf.data.Options()
  options.deterministic = True
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
  return ds.with_options(options).prefetch(AUTOTUNE)


def _shard(files, num_shards, shard_id, decode_fn, batch_size, is_training, seed, shuffle_buffer,
           cycle_length, drop_remainder, repeat, filter_fn, with_path):
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

  def read_file(path):
    records = tf.data.TFRecordDataset(path)
    return records.map(lambda r: (path, r)) if with_path else records

  ds = ds.interleave(read_file, cycle_length=max(1, min(cycle_length, len(files))),
                     num_parallel_calls=AUTOTUNE, deterministic=True)
  if shard_records:
    ds = ds.shard(num_shards, shard_id)
  if is_training:
    ds = ds.shuffle(shuffle_buffer, seed=seed)
  ds = ds.map(decode_fn, num_parallel_calls=AUTOTUNE, deterministic=True)
  if filter_fn is not None:
    ds = ds.filter(filter_fn)
  return ds.batch(batch_size, drop_remainder=drop_remainder)


def _check_ids(path, features, vocab_size):
  """`features` once its ids are checked to be < vocab_size (the error names `path`)."""
  checks = []
  for key in ("input_ids", "masked_lm_ids"):
    if key in features:
      ids = features[key]
      top = tf.reduce_max(ids)
      checks.append(tf.debugging.Assert(
          top < tf.cast(vocab_size, ids.dtype),
          [f"{_ID_CHECK}={vocab_size}: {key} holds", top, "in", path], summarize=1))
  with tf.control_dependencies(checks):
    return {k: tf.identity(v) for k, v in features.items()}


def find_corrupt_file(files):
  """The first of `files` that TensorFlow cannot read to the end (truncated or corrupt), or None."""
  for path in files:
    try:
      for _ in tf.data.TFRecordDataset(path):
        pass
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError):
      return path
  return None


def user_error_from(exc):
  """A UserError naming the file for a TensorFlow error raised by a pipeline here, else None."""
  message = getattr(exc, "message", str(exc))
  match = re.search(re.escape(_ID_CHECK) + r"=(\d+): (\w+) holds\] \[(-?\d+)\] \[in\] \[(.*?)\]",
                    message) if isinstance(exc, tf.errors.InvalidArgumentError) else None
  if match:
    vocab_size, key, top, path = match.groups()
    return errors.UserError(
        f"token id {top} in {key} is >= vocab_size={vocab_size} of the bert_config.json", path,
        VOCAB_FIX)
  if isinstance(exc, tf.errors.DataLossError):
    path = find_corrupt_file(_FILES_READ)
    return errors.UserError(
        "truncated or corrupt TFRecord file", path or ", ".join(_FILES_READ[:5]),
        "the file was not completely written (an interrupted run?): regenerate it, or leave it "
        "out of --input_file")
  return None


