"""Encoder + head models for pre-training and each fine-tuning task, and their losses.

Every model holds the encoder as `.bert`, so fine-tuning can restore the encoder alone.
Variable names follow GR (see official_bert.checkpoints for the one naming rule).
"""

import keras
import tensorflow as tf

from official_bert import configs
from official_bert.encoder import BertModel
from official_bert.layers import (PretrainingHeads, SpanHead, add_output_projection,
                                  project)


class BertPretrainer(keras.Model):
  """GR's run_pretraining model: masked LM + next sentence prediction.

  Inputs: input_ids, input_mask, segment_ids [B, S]; masked_lm_positions [B, P].
  Outputs (float32): masked_lm_logits [B, P, V], next_sentence_logits [B, 2].
  """

  def __init__(self, config: configs.BertConfig, name="bert_pretrainer", **kwargs):
    super().__init__(name=name, **kwargs)
    self.config = config
    self.bert = BertModel(config)
    self.cls = PretrainingHeads(config.vocab_size, config.hidden_size, config.hidden_act,
                                config.initializer_range)

  def build(self, input_shape=None):
    self.bert.build()
    self.cls.build((None, None, self.config.hidden_size))
    self.built = True

  def call(self, features, training=False):
    outputs = self.bert(features, training=training)
    mlm_logits, nsp_logits = self.cls(outputs["sequence_output"], outputs["pooled_output"],
                                      features["masked_lm_positions"],
                                      self.bert.embedding_table)
    return dict(masked_lm_logits=mlm_logits, next_sentence_logits=nsp_logits)


@tf.custom_gradient
def _cross_entropy(logits, labels):
  """-log_softmax(logits)[label], i.e. GR's -sum(one_hot * log_probs): [M, V], [M] -> [M].

  With the gradient written out (softmax - one_hot): autodiff of the gather scatters into a zeroed
  [M, V] buffer, and TF's fused sparse_softmax_cross_entropy kernel is ~1.6x slower on CPU.
  """
  log_probs = tf.nn.log_softmax(logits)                                  # [M, V]
  nll = -tf.gather(log_probs, labels, batch_dims=1)                      # [M]

  def grad(dy):  # dy: [M]
    g = tf.exp(log_probs) * dy[:, tf.newaxis]                            # [M, V]
    at_label = tf.stack([tf.range(tf.shape(labels)[0]), labels], axis=1)  # [M, 2]
    return tf.tensor_scatter_nd_sub(g, at_label, dy), None

  return nll, grad


def masked_lm_loss(masked_lm_logits, masked_lm_ids, masked_lm_weights):
  """GR's MLM loss: per-prediction cross entropy weighted by masked_lm_weights / their sum."""
  logits = tf.cast(masked_lm_logits, tf.float32)                         # [B, P, V]
  labels = tf.cast(masked_lm_ids, tf.int32)                              # [B, P]
  per_example = tf.reshape(
      _cross_entropy(tf.reshape(logits, [-1, tf.shape(logits)[-1]]), tf.reshape(labels, [-1])),
      tf.shape(labels))                                                  # [B, P]
  weights = tf.cast(masked_lm_weights, tf.float32)
  return tf.reduce_sum(weights * per_example) / (tf.reduce_sum(weights) + 1e-5)


def classification_loss(logits, labels):
  """Mean cross entropy over the batch, as GR's NSP and run_classifier losses."""
  labels = tf.reshape(tf.cast(labels, tf.int32), [-1])                  # [B]
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=tf.cast(logits, tf.float32)))


def pretraining_loss(features, outputs):
  """GR's total pre-training loss (MLM + NSP) and the metrics GR's eval reports."""
  mlm_logits = outputs["masked_lm_logits"]
  nsp_logits = outputs["next_sentence_logits"]
  mlm = masked_lm_loss(mlm_logits, features["masked_lm_ids"], features["masked_lm_weights"])
  nsp = classification_loss(nsp_logits, features["next_sentence_labels"])
  weights = tf.cast(features["masked_lm_weights"], tf.float32)
  mlm_correct = tf.cast(tf.equal(tf.argmax(mlm_logits, -1, output_type=tf.int32),
                                 tf.cast(features["masked_lm_ids"], tf.int32)), tf.float32)
  nsp_labels = tf.reshape(tf.cast(features["next_sentence_labels"], tf.int32), [-1])
  nsp_correct = tf.cast(tf.equal(tf.argmax(nsp_logits, -1, output_type=tf.int32),
                                 nsp_labels), tf.float32)
  metrics = dict(
      masked_lm_loss=mlm,
      masked_lm_accuracy=tf.reduce_sum(mlm_correct * weights) / (tf.reduce_sum(weights) + 1e-5),
      next_sentence_loss=nsp,
      next_sentence_accuracy=tf.reduce_mean(nsp_correct))
  return mlm + nsp, metrics


class BertClassifier(keras.Model):
  """GR's run_classifier model: dropout(pooled_output) @ output_weights^T + output_bias.

  Outputs logits [B, num_labels] (num_labels=1 for regression, e.g. STS-B).
  """

  def __init__(self, config: configs.BertConfig, num_labels, dropout_prob=0.1,
               name="bert_classifier", **kwargs):
    super().__init__(name=name, **kwargs)
    self.config = config
    self.num_labels = num_labels
    self.bert = BertModel(config)
    self.dropout = keras.layers.Dropout(dropout_prob)

  def build(self, input_shape=None):
    self.bert.build()
    self.output_weights, self.output_bias = add_output_projection(
        self, self.num_labels, self.config.hidden_size, self.config.initializer_range)
    self.built = True

  def call(self, features, training=False):
    pooled = self.bert(features, training=training)["pooled_output"]   # [B, H]
    return project(self.dropout(pooled, training=training),
                   self.output_weights, self.output_bias)               # [B, L]


class BertTokenClassifier(BertClassifier):
  """Per-token classifier (the BERT paper's NER recipe): logits [B, S, num_labels]."""

  def __init__(self, config, num_labels, dropout_prob=0.1, name="bert_token_classifier",
               **kwargs):
    super().__init__(config, num_labels, dropout_prob, name=name, **kwargs)

  def call(self, features, training=False):
    sequence = self.bert(features, training=training)["sequence_output"]  # [B, S, H]
    return project(self.dropout(sequence, training=training),
                   self.output_weights, self.output_bias)                 # [B, S, L]


class BertSpanLabeler(keras.Model):
  """GR's run_squad model: start/end logits [B, S] from `cls/squad` on every token."""

  def __init__(self, config: configs.BertConfig, name="bert_span_labeler", **kwargs):
    super().__init__(name=name, **kwargs)
    self.config = config
    self.bert = BertModel(config)
    self.cls = SpanHead(config.initializer_range)

  def build(self, input_shape=None):
    self.bert.build()
    self.cls.build((None, None, self.config.hidden_size))
    self.built = True

  def call(self, features, training=False):
    sequence = self.bert(features, training=training)["sequence_output"]
    start_logits, end_logits = self.cls(sequence)
    return dict(start_logits=start_logits, end_logits=end_logits)
