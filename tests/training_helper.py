"""Shared pieces of tests/test_training.py, also run as a subprocess for the distributed tests.

  python tests/training_helper.py mirrored RECORDS_GLOB OUT_DIR   # 2 logical CPUs vs 1 device
Writes the final weights to OUT_DIR: one.npz (one device fed 2 replicas' batches) and
mirrored.npz (4 steps each); with dropout on, 2 replicas: straight.npz (4 steps), halfway.npz
(stopped after 2 of 4 steps) and resumed.npz (that run resumed to 4).

  python tests/training_helper.py cli JOB NUM_CPUS WEIGHTS.npz --flag=... ...
runs official_bert.cli.JOB (what run_scripts/JOB.py runs) with its flags, on NUM_CPUS logical CPU
devices (so --distribution_strategy=mirrored has that many replicas without GPUs), and writes the
weights loop.train returns to WEIGHTS.npz.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SEQ, PRED = 32, 5


def tiny_config(dropout=0.0):
  from official_bert import configs  # pylint: disable=import-outside-toplevel
  # Odd sizes so shape bugs show; GR's uncased vocab because the data is real text.
  return configs.BertConfig(vocab_size=30522, hidden_size=36, num_hidden_layers=2,
                            num_attention_heads=3, intermediate_size=37,
                            hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                            max_position_embeddings=64, type_vocab_size=2)


def make_records(data_dir, out_dir):
  """Pre-training TFRecords (2 files) from GR's sample_text via the data-prep pipeline."""
  from official_bert.data import pretraining_pipeline as pp  # pylint: disable=import-outside-toplevel
  files = [os.path.join(out_dir, f"pt-{i}.tfrecord") for i in range(2)]
  pp.run_compat([os.path.join(data_dir, "sample_text", "sample_text.txt")], files,
                pp.make_options(os.path.join(data_dir, "vocab", "bert-base-uncased-vocab.txt"),
                                max_seq_length=SEQ, max_predictions_per_seq=PRED,
                                masked_lm_prob=0.5, dupe_factor=3, random_seed=1),
                num_logged=0)
  return files


def full_masks(example):
  # Examples with all P predictions real: then the mean of per-replica (per-micro-batch) mean
  # losses equals the mean over the global batch, so 1 device and N replicas are comparable.
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.equal(tf.reduce_sum(example["masked_lm_weights"]), float(PRED))


def _dataset(files, per_replica_batch, ctx):
  from official_bert.tasks import pretraining  # pylint: disable=import-outside-toplevel
  return pretraining.pretraining_dataset(files, per_replica_batch, SEQ, PRED, True, ctx, seed=3,
                                         filter_fn=full_masks)


def _two_replicas_in_one(files, batch, _):
  """One device fed what 2 replicas get: each global batch is replica 0's then replica 1's
  per-replica batch (replica i reads input shard i)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  shards = [_dataset(files, batch // 2, tf.distribute.InputContext(2, i, 2)) for i in range(2)]
  return tf.data.Dataset.zip(tuple(shards)).map(
      lambda a, b: {k: tf.concat([a[k], b[k]], 0) for k in a})


def run(strategy, files, output_dir, num_train_steps, batch=8, accumulation=1, jit=False,
        dropout=0.0, total_steps=None, steps_per_loop=2, save_every=2, lr=1e-3,
        optimizer="adamw", map_dataset=None, eval_fn=None, dataset_fn=None, **extra):
  """Trains the tiny pretrainer; returns (model, final weights).

  map_dataset: applied to the training dataset (e.g. to slow it down); dataset_fn(files, batch,
  ctx): another training dataset; extra: more loop.RunSettings fields (summaries off unless
  given)."""
  import keras  # pylint: disable=import-outside-toplevel
  from official_bert import optimization  # pylint: disable=import-outside-toplevel
  from official_bert.tasks import pretraining  # pylint: disable=import-outside-toplevel
  from official_bert.training import loop  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(7)
  total = total_steps or num_train_steps
  task = pretraining.pretraining_task(tiny_config(dropout))

  def train_dataset_fn(ctx):
    if dataset_fn:
      ds = dataset_fn(files, batch, ctx)
    else:
      ds = _dataset(files, ctx.get_per_replica_batch_size(batch), ctx)
    return map_dataset(ds) if map_dataset else ds

  settings = loop.RunSettings(output_dir=output_dir, num_train_steps=num_train_steps,
                              train_batch_size=batch, steps_per_loop=steps_per_loop,
                              save_checkpoints_steps=save_every,
                              gradient_accumulation_steps=accumulation, jit_compile=jit,
                              **{"write_summaries": False, **extra})
  model = loop.train(task, strategy, train_dataset_fn,
                     lambda: optimization.create_optimizer(lr, total, 1, optimizer), settings,
                     eval_fn=eval_fn)
  return model, [w.copy() for w in model.get_weights()]


def _cli(job, num_cpus, weights_path, *argv):
  import importlib  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  if int(num_cpus) > 1:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * int(num_cpus))
  from official_bert.training import loop  # pylint: disable=import-outside-toplevel
  train = loop.train

  def train_and_dump(*args, **kwargs):
    model = train(*args, **kwargs)
    np.savez(weights_path, *model.get_weights())
    return model

  loop.train = train_and_dump
  module = importlib.import_module(f"official_bert.cli.{job}")
  sys.argv = [job, *argv]
  module.run()


def _main(mode, pattern, out_dir):
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from official_bert import utils  # pylint: disable=import-outside-toplevel
  files = utils.expand_globs(pattern)
  if mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"],
                                              cross_device_ops=tf.distribute.ReductionToOneDevice())
    _, w1 = run(one, files, os.path.join(out_dir, "one"), 4, dataset_fn=_two_replicas_in_one)
    _, w2 = run(mirrored, files, os.path.join(out_dir, "mirrored"), 4)
    np.savez(os.path.join(out_dir, "one.npz"), *w1)
    np.savez(os.path.join(out_dir, "mirrored.npz"), *w2)
    # Resume: each replica's input position and dropout RNG state, the weights and the slots.
    from absl import logging  # pylint: disable=import-outside-toplevel
    logging.set_verbosity(logging.INFO)  # the test reads "Resuming at step 2 of 4"
    _, straight = run(mirrored, files, os.path.join(out_dir, "straight"), 4, dropout=0.1)
    resume_dir = os.path.join(out_dir, "resumed")
    _, halfway = run(mirrored, files, resume_dir, 2, total_steps=4, dropout=0.1)
    _, resumed = run(mirrored, files, resume_dir, 4, dropout=0.1)
    for name, weights in (("straight", straight), ("halfway", halfway), ("resumed", resumed)):
      np.savez(os.path.join(out_dir, f"{name}.npz"), *weights)
  else:
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
  if sys.argv[1] == "cli":
    _cli(*sys.argv[2:])
  else:
    _main(*sys.argv[1:4])
