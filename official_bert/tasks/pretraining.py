"""The pre-training task (masked LM + next sentence): model, GR's loss and eval metrics, the input
pipeline over GR's pre-training TFRecords, and eval_results.txt."""

import dataclasses
import os
from typing import List

from absl import logging
import tensorflow as tf

from official_bert import errors, models, utils
from official_bert.data import pretraining as pretraining_data
from official_bert.tasks import base, losses
from official_bert.training import distribute, inputs, loop


# ---------------------------------------------------------------------------- loss and metrics


def masked_lm_loss_and_accuracy(masked_lm_logits, masked_lm_ids, masked_lm_weights):
  """GR's MLM loss (cross entropy weighted by masked_lm_weights / their sum) and accuracy."""
  return losses.weighted_cross_entropy_and_accuracy(masked_lm_logits, masked_lm_ids,
                                                    masked_lm_weights)


def pretraining_loss(features, outputs):
  """GR's total pre-training loss (MLM + NSP) and the metrics GR's eval reports."""
  nsp_logits = outputs["next_sentence_logits"]
  mlm, mlm_accuracy = masked_lm_loss_and_accuracy(
      outputs["masked_lm_logits"], features["masked_lm_ids"], features["masked_lm_weights"])
  nsp = losses.mean_cross_entropy(nsp_logits, features["next_sentence_labels"])
  metrics = dict(
      masked_lm_loss=mlm,
      masked_lm_accuracy=mlm_accuracy,
      next_sentence_loss=nsp,
      next_sentence_accuracy=losses.accuracy(nsp_logits, features["next_sentence_labels"]))
  return mlm + nsp, metrics


def pretraining_eval_metrics(features, outputs):
  """GR's run_pretraining metric_fn as (sum, count) pairs.

  masked_lm_* are weighted by masked_lm_weights over all predictions, next_sentence_* are means
  over examples, and `loss` is the mean of per-batch total losses (the Estimator's eval loss).
  """
  # The [B, P, V] cross entropy once; the batch's total loss (pretraining_loss) from it.
  mlm_loss, mlm_correct = losses.sparse_cross_entropy(
      outputs["masked_lm_logits"], features["masked_lm_ids"])                       # [B,P]
  weights = tf.cast(features["masked_lm_weights"], tf.float32)                       # [B,P]
  nsp_log_probs = tf.nn.log_softmax(tf.cast(outputs["next_sentence_logits"], tf.float32))
  nsp_labels = tf.reshape(tf.cast(features["next_sentence_labels"], tf.int32), [-1])  # [B]
  nsp_loss = -tf.gather(nsp_log_probs, nsp_labels, batch_dims=1)                     # [B]
  nsp_correct = tf.cast(tf.equal(tf.argmax(nsp_log_probs, -1, output_type=tf.int32), nsp_labels),
                        tf.float32)
  num_weights = tf.reduce_sum(weights)
  batch = tf.cast(tf.size(nsp_labels), tf.float32)
  loss = losses.weighted_mean(mlm_loss, weights) + tf.reduce_mean(nsp_loss)
  return {
      "masked_lm_accuracy": (tf.reduce_sum(mlm_correct * weights), num_weights),
      "masked_lm_loss": (tf.reduce_sum(mlm_loss * weights), num_weights),
      "next_sentence_accuracy": (tf.reduce_sum(nsp_correct), batch),
      "next_sentence_loss": (tf.reduce_sum(nsp_loss), batch),
      "loss": (tf.cast(loss, tf.float32), tf.constant(1.0)),
  }


def pretraining_task(bert_config):
  """loop.Task for BertPretrainer with GR's loss and eval metrics."""
  def build_model():
    model = models.BertPretrainer(bert_config)
    model.build()
    return model
  return loop.Task(build_model=build_model, loss_fn=pretraining_loss,
                   eval_metrics_fn=pretraining_eval_metrics, name="pretraining")


# ---------------------------------------------------------------------------- input


def check_pretraining_files(input_files, max_seq_length, max_predictions_per_seq,
                            vocab_size=None):
  """Reads the first record and fails clearly if its lengths (or ids) disagree with the flags."""
  path = input_files[0]
  try:
    first = next(iter(tf.data.TFRecordDataset(path).take(1)))
  except StopIteration:
    raise errors.UserError("no records", path,
                           "the file is empty; check --input_file or regenerate it") from None
  except tf.errors.DataLossError:
    raise errors.UserError("truncated or corrupt TFRecord file", path,
                           "regenerate it, or leave it out of --input_file") from None
  example = tf.train.Example.FromString(first.numpy())
  feats = example.features.feature
  expected = pretraining_data.feature_spec(max_seq_length, max_predictions_per_seq)
  missing = sorted(set(expected) - set(feats))
  if missing:
    raise errors.UserError(f"not a pre-training TFRecord (missing features {missing})", path,
                           "make it with data_prep's create_pretraining_data")
  for key, flag, want in (("input_ids", "max_seq_length", max_seq_length),
                          ("masked_lm_positions", "max_predictions_per_seq",
                           max_predictions_per_seq)):
    got = len(feats[key].int64_list.value)
    if got != want:
      raise errors.UserError(
          f"{key} has length {got} but --{flag}={want}", path,
          f"pass --{flag}={got} or regenerate the data with --{flag}={want}")
  if vocab_size is not None:
    for key in ("input_ids", "masked_lm_ids"):
      top = max(feats[key].int64_list.value, default=0)
      if top >= vocab_size:
        raise errors.UserError(
            f"token id {top} in {key} of the first record is >= vocab_size={vocab_size} of the "
            "bert_config.json", path, inputs.VOCAB_FIX)


def pretraining_dataset(input_file, batch_size, max_seq_length, max_predictions_per_seq,
                        is_training, input_context=None, seed=12345, repeat=None,
                        filter_fn=None, vocab_size=None):
  """GR's pre-training input_fn: batches of int32 feature dicts with static shapes.

  With `vocab_size` (the model config's), ids are checked against it (tfrecord_dataset)."""
  files = utils.expand_globs(input_file) if isinstance(input_file, str) else list(input_file)

  def decode(serialized):  # the schema is owned by official_bert.data.pretraining
    return pretraining_data.parse_example(serialized, max_seq_length, max_predictions_per_seq)

  # GR repeats eval data too and evaluates a fixed number of steps (max_eval_steps).
  return inputs.tfrecord_dataset(files, decode, batch_size, is_training, input_context, seed=seed,
                          repeat=True if repeat is None else repeat, filter_fn=filter_fn,
                          vocab_size=vocab_size)


# ---------------------------------------------------------------------------- the job


@dataclasses.dataclass
class PretrainingConfig:
  """What run_pretraining's flags set for the task."""
  input_files: List[str]
  output_dir: str
  max_seq_length: int = 128
  max_predictions_per_seq: int = 20
  max_eval_steps: int = 100
  seed: int = 12345


class PretrainingTask:
  """Pre-training on GR's TFRecords; `evaluate` writes GR's eval_results.txt."""

  def __init__(self, config: PretrainingConfig, bert_config):
    self.config = config
    check_pretraining_files(config.input_files, config.max_seq_length,
                            config.max_predictions_per_seq, vocab_size=bert_config.vocab_size)
    self.vocab_size = bert_config.vocab_size
    files = config.input_files
    logging.info("*** Input Files *** %d: %s%s", len(files), ", ".join(files[:5]),
                 " ..." if len(files) > 5 else "")
    self.loop_task = pretraining_task(bert_config)

  def dataset_fn(self, is_training, global_batch):
    c = self.config

    def fn(ctx):
      return pretraining_dataset(c.input_files, ctx.get_per_replica_batch_size(global_batch),
                                 c.max_seq_length, c.max_predictions_per_seq, is_training, ctx,
                                 seed=c.seed, vocab_size=self.vocab_size)
    return fn

  def train_data(self, global_batch):
    """(dataset_fn, number of examples): the steps come from --num_train_steps."""
    return self.dataset_fn(True, global_batch), None

  def evaluate(self, strategy, model, global_batch):
    results = loop.evaluate(self.loop_task, strategy, self.dataset_fn(False, global_batch), model,
                            max_steps=self.config.max_eval_steps)
    results["global_step"] = base.global_step(self.config.output_dir)
    if distribute.is_chief(strategy):
      logging.info("***** Eval results *****")
      base.write_eval_results(os.path.join(self.config.output_dir, "eval_results.txt"), results)
    return results
