"""Encoder + head models for pre-training and each fine-tuning task, and their losses.

Every model holds the encoder as `.bert`, so fine-tuning can restore the encoder alone.
Variable names follow GR (see official_bert.checkpoints for the one naming rule).
"""

import keras
import tensorflow as tf

from official_bert.encoder import BertModel, ConfiguredModel
from official_bert.layers import (Dropout, PretrainingHeads, SpanHead, add_output_projection,
                                  project)


@keras.saving.register_keras_serializable(package="official_bert")
class BertPretrainer(ConfiguredModel):
  """GR's run_pretraining model: masked LM + next sentence prediction.

  Inputs: input_ids, input_mask, segment_ids [B, S]; masked_lm_positions [B, P].
  Outputs (float32): masked_lm_logits [B, P, V], next_sentence_logits [B, 2].
  """

  def __init__(self, config, name="bert_pretrainer", **kwargs):
    super().__init__(config, name=name, **kwargs)
    config = self.config
    self.bert = BertModel(config)
    self.cls = PretrainingHeads(config.vocab_size, config.hidden_size, config.hidden_act,
                                config.initializer_range)

  def build(self, input_shape=None):
    self.bert.build()
    self.cls.build((None, None, self.config.hidden_size))
    self.built = True

  def call(self, features, training=False):
    # The heads read the last layer at the masked positions and [CLS] only, so the encoder
    # computes the last layer there only (exact; ~1/6 less work for a 4-layer model).
    positions = features["masked_lm_positions"]                          # [B, P]
    outputs = self.bert(features, training=training, output_positions=positions)
    mlm_logits, nsp_logits = self.cls(outputs["sequence_output"], outputs["pooled_output"],
                                      None, self.bert.embedding_table)
    return dict(masked_lm_logits=mlm_logits, next_sentence_logits=nsp_logits)


# The [M, V] softmax of the MLM loss costs as much as a large matmul on CPU when run as a chain of
# TF kernels (max, sub, exp, sum, div, one-hot, ...); XLA fuses each direction into one or two
# passes. The matmuls around it stay outside XLA, where oneDNN is faster.
@tf.function(jit_compile=True)
def _softmax_cross_entropy_forward(logits, labels):
  """logits [M, V] f32, labels [M] -> nll [M], probs [M, V], correct [M] (argmax == label)."""
  top = tf.reduce_max(logits, -1, keepdims=True)                         # [M, 1]
  exp = tf.exp(logits - top)                                             # [M, V]
  total = tf.reduce_sum(exp, -1, keepdims=True)                          # [M, 1]
  nll = tf.squeeze(tf.math.log(total) + top, -1) - tf.gather(logits, labels, batch_dims=1)
  correct = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels)
  return nll, exp / total, tf.cast(correct, tf.float32)


@tf.function(jit_compile=True)
def _softmax_cross_entropy_backward(probs, labels, dy):
  """d nll / d logits = (softmax - one_hot(label)) * dy: [M, V]."""
  return (probs - tf.one_hot(labels, tf.shape(probs)[-1], dtype=probs.dtype)) * dy[:, tf.newaxis]


@tf.custom_gradient
def _cross_entropy(logits, labels):
  """-log_softmax(logits)[label] (GR's -sum(one_hot * log_probs)) and argmax == label: [M, V], [M].

  The gradient is written out (softmax - one_hot): autodiff of the gather would scatter into a
  zeroed [M, V] buffer, and TF's fused sparse_softmax_cross_entropy kernel is ~2x slower on CPU.
  """
  nll, probs, correct = _softmax_cross_entropy_forward(logits, labels)

  def grad(dy, unused_dcorrect):
    return _softmax_cross_entropy_backward(probs, labels, dy), None

  return (nll, correct), grad


def masked_lm_cross_entropy(masked_lm_logits, masked_lm_ids):
  """Per-prediction cross entropy and argmax == label: [B, P, V], [B, P] -> [B, P], [B, P]."""
  logits = tf.cast(masked_lm_logits, tf.float32)                         # [B, P, V]
  labels = tf.cast(masked_lm_ids, tf.int32)                              # [B, P]
  nll, correct = _cross_entropy(tf.reshape(logits, [-1, tf.shape(logits)[-1]]),
                                tf.reshape(labels, [-1]))                # [B*P]
  return tf.reshape(nll, tf.shape(labels)), tf.stop_gradient(tf.reshape(correct, tf.shape(labels)))


def weighted_mean(values, weights):
  """GR's masked-LM reduction: sum(weights * values) / (sum(weights) + 1e-5)."""
  weights = tf.cast(weights, tf.float32)
  return tf.reduce_sum(weights * values) / (tf.reduce_sum(weights) + 1e-5)


def masked_lm_loss_and_accuracy(masked_lm_logits, masked_lm_ids, masked_lm_weights):
  """GR's MLM loss (cross entropy weighted by masked_lm_weights / their sum) and accuracy."""
  nll, correct = masked_lm_cross_entropy(masked_lm_logits, masked_lm_ids)  # [B, P]
  return (weighted_mean(nll, masked_lm_weights), weighted_mean(correct, masked_lm_weights))


def masked_lm_loss(masked_lm_logits, masked_lm_ids, masked_lm_weights):
  """GR's MLM loss: per-prediction cross entropy weighted by masked_lm_weights / their sum."""
  return masked_lm_loss_and_accuracy(masked_lm_logits, masked_lm_ids, masked_lm_weights)[0]


def classification_loss(logits, labels):
  """Mean cross entropy over the batch, as GR's NSP and run_classifier losses."""
  labels = tf.reshape(tf.cast(labels, tf.int32), [-1])                  # [B]
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=tf.cast(logits, tf.float32)))


def pretraining_loss(features, outputs):
  """GR's total pre-training loss (MLM + NSP) and the metrics GR's eval reports."""
  mlm_logits = outputs["masked_lm_logits"]
  nsp_logits = outputs["next_sentence_logits"]
  mlm, mlm_accuracy = masked_lm_loss_and_accuracy(
      mlm_logits, features["masked_lm_ids"], features["masked_lm_weights"])
  nsp = classification_loss(nsp_logits, features["next_sentence_labels"])
  nsp_labels = tf.reshape(tf.cast(features["next_sentence_labels"], tf.int32), [-1])
  nsp_correct = tf.cast(tf.equal(tf.argmax(nsp_logits, -1, output_type=tf.int32),
                                 nsp_labels), tf.float32)
  metrics = dict(
      masked_lm_loss=mlm,
      masked_lm_accuracy=mlm_accuracy,
      next_sentence_loss=nsp,
      next_sentence_accuracy=tf.reduce_mean(nsp_correct))
  return mlm + nsp, metrics


@keras.saving.register_keras_serializable(package="official_bert")
class BertClassifier(ConfiguredModel):
  """GR's run_classifier model: dropout(pooled_output) @ output_weights^T + output_bias.

  Outputs logits [B, num_labels] (num_labels=1 for regression, e.g. STS-B).
  pooling="cls" is GR's (the pooler's tanh dense on [CLS]); "mean" averages the final hidden
  states over real tokens instead, the pooling sentence-transformers checkpoints (such as
  all-MiniLM-L6-v2) were trained with. Both have the same variables.
  """

  POOLINGS = ("cls", "mean")

  def __init__(self, config, num_labels, dropout_prob=0.1, pooling="cls",
               name="bert_classifier", **kwargs):
    if pooling not in self.POOLINGS:
      raise ValueError(f"pooling={pooling!r}: expected one of {self.POOLINGS}")
    super().__init__(config, name=name, **kwargs)
    config = self.config
    self.num_labels = num_labels
    self.pooling = pooling
    self.bert = BertModel(config)
    self.dropout = Dropout(dropout_prob)

  def build(self, input_shape=None):
    self.bert.build()
    self.output_weights, self.output_bias = add_output_projection(
        self, self.num_labels, self.config.hidden_size, self.config.initializer_range)
    self.built = True

  def call(self, features, training=False):
    outputs = self.bert(features, training=training)
    if self.pooling == "cls":
      pooled = outputs["pooled_output"]                                 # [B, H]
    else:
      pooled = masked_mean(outputs["sequence_output"], features.get("input_mask"))
    return project(self.dropout(pooled, training=training),
                   self.output_weights, self.output_bias)               # [B, L]

  def get_config(self):
    return {**super().get_config(), "num_labels": self.num_labels,
            "dropout_prob": self.dropout.rate, "pooling": self.pooling}


def masked_mean(sequence, input_mask=None):
  """sequence [B, S, H], input_mask [B, S] (1 = real token) -> mean over real tokens [B, H]."""
  if input_mask is None:
    return tf.reduce_mean(sequence, axis=1)
  mask = tf.cast(input_mask, sequence.dtype)[:, :, None]                # [B, S, 1]
  return tf.reduce_sum(sequence * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


@keras.saving.register_keras_serializable(package="official_bert")
class BertTokenClassifier(BertClassifier):
  """Per-token classifier (the BERT paper's NER recipe): logits [B, S, num_labels]."""

  def __init__(self, config, num_labels, dropout_prob=0.1, name="bert_token_classifier",
               **kwargs):
    super().__init__(config, num_labels, dropout_prob, name=name, **kwargs)

  def call(self, features, training=False):
    sequence = self.bert(features, training=training)["sequence_output"]  # [B, S, H]
    return project(self.dropout(sequence, training=training),
                   self.output_weights, self.output_bias)                 # [B, S, L]

  def get_config(self):
    config = super().get_config()
    del config["pooling"]  # every token is classified; no pooling
    return config


@keras.saving.register_keras_serializable(package="official_bert")
class BertSpanLabeler(ConfiguredModel):
  """GR's run_squad model: start/end logits [B, S] from `cls/squad` on every token."""

  def __init__(self, config, name="bert_span_labeler", **kwargs):
    super().__init__(config, name=name, **kwargs)
    config = self.config
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
