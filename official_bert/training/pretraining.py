"""The pre-training Task (masked LM + next sentence) and GR's eval metrics for it."""

import tensorflow as tf

from official_bert import models
from official_bert.training import loop


def pretraining_eval_metrics(features, outputs):
  """GR's run_pretraining metric_fn as (sum, count) pairs.

  masked_lm_* are weighted by masked_lm_weights over all predictions, next_sentence_* are means
  over examples, and `loss` is the mean of per-batch total losses (the Estimator's eval loss).
  """
  # The [B, P, V] cross entropy once; the batch's total loss (models.pretraining_loss) from it.
  mlm_loss, mlm_correct = models.masked_lm_cross_entropy(
      outputs["masked_lm_logits"], features["masked_lm_ids"])                       # [B,P]
  weights = tf.cast(features["masked_lm_weights"], tf.float32)                       # [B,P]
  nsp_log_probs = tf.nn.log_softmax(tf.cast(outputs["next_sentence_logits"], tf.float32))
  nsp_labels = tf.reshape(tf.cast(features["next_sentence_labels"], tf.int32), [-1])  # [B]
  nsp_loss = -tf.gather(nsp_log_probs, nsp_labels, batch_dims=1)                     # [B]
  nsp_correct = tf.cast(tf.equal(tf.argmax(nsp_log_probs, -1, output_type=tf.int32), nsp_labels),
                        tf.float32)
  num_weights = tf.reduce_sum(weights)
  batch = tf.cast(tf.size(nsp_labels), tf.float32)
  loss = models.weighted_mean(mlm_loss, weights) + tf.reduce_mean(nsp_loss)
  return {
      "masked_lm_accuracy": (tf.reduce_sum(mlm_correct * weights), num_weights),
      "masked_lm_loss": (tf.reduce_sum(mlm_loss * weights), num_weights),
      "next_sentence_accuracy": (tf.reduce_sum(nsp_correct), batch),
      "next_sentence_loss": (tf.reduce_sum(nsp_loss), batch),
      "loss": (tf.cast(loss, tf.float32), tf.constant(1.0)),
  }


def pretraining_task(bert_config):
  """Task for BertPretrainer with GR's loss."""
  def build_model():
    model = models.BertPretrainer(bert_config)
    model.build()
    return model
  return loop.Task(build_model=build_model, loss_fn=models.pretraining_loss,
                   eval_metrics_fn=pretraining_eval_metrics, name="pretraining")
