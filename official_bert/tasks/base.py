"""What the tasks share: GR's step count, the encoder restore, a run's global step, prediction over
padded eval batches, and GR's `key = value` results file.

A task object (one per module of official_bert.tasks) has `loop_task` (training.loop.Task: model
builder, loss, eval metrics), `train_data(global_batch)` -> (dataset_fn, number of examples the
epochs count), and its own eval / predict methods that write its output files.
"""

from absl import logging
import numpy as np
import tensorflow as tf

from official_bert import checkpoints, utils
from official_bert.data import records
from official_bert.training import loop


def num_train_steps(num_examples, batch_size, num_epochs):
  """GR's step count: int(examples / batch size * epochs)."""
  return int(num_examples / batch_size * num_epochs)


def encoder_init_fn(init_checkpoint):
  """loop.train's init_fn restoring a pre-trained encoder (None without a checkpoint)."""
  if not init_checkpoint:
    return None
  return lambda model: checkpoints.restore_encoder(model, init_checkpoint)


def global_step(output_dir):
  """The step of the newest `model.ckpt-<step>` in output_dir (0 if none)."""
  latest = tf.train.latest_checkpoint(output_dir)
  return int(latest.rsplit("-", 1)[1]) if latest else 0


def predict_real(strategy, dataset_fn, model, predict_fn, keep_features=(), num_examples=None,
                 global_batch=None, name="predict"):
  """loop.predict over eval batches (records.eval_dataset) -> {name: numpy array} of the real
  rows only, in file order. num_examples and global_batch give the progress lines a total."""
  num_batches = -(-num_examples // global_batch) if num_examples and global_batch else None
  batches = list(loop.predict(strategy, dataset_fn, model, predict_fn=predict_fn,
                              keep_features=tuple(keep_features) + (records.IS_REAL,),
                              num_batches=num_batches, batch_size=global_batch, name=name))
  out = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
  real = out.pop(records.IS_REAL).astype(bool)
  return {k: v[real] for k, v in out.items()}


def write_eval_results(path, results):
  """GR's eval_results.txt: one `key = value` line per result, keys sorted (also logged)."""
  with utils.atomic_open(path, "w") as f:
    for key in sorted(results):
      logging.info("  %s = %s", key, results[key])
      f.write(f"{key} = {results[key]}\n")


def read_eval_results(path):
  """eval_results.txt -> {key: float}."""
  with tf.io.gfile.GFile(path, "r") as f:
    return {k.strip(): float(v) for k, v in
            (line.split("=", 1) for line in f if "=" in line)}
