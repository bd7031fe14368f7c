"""Output heads, named as in GR's run_pretraining / run_classifier / run_squad.

  cls/predictions/{transform/dense, transform/LayerNorm, output_bias}   masked LM
  cls/seq_relationship/{output_weights, output_bias}                   next sentence
  cls/squad/{output_weights, output_bias}                              SQuAD spans
  output_weights, output_bias (top level)                              classifier, tagger
GR stores these projections as [num_outputs, H] and multiplies with transpose_b.
"""

import keras
import tensorflow as tf

from official_bert.layers.activations import get_activation
from official_bert.layers.common import create_initializer, gather_indexes, layer_norm


def add_output_projection(layer, num_outputs, hidden_size, initializer_range):
  """Adds GR's `output_weights` [K, H] and `output_bias` [K] to `layer`."""
  weights = layer.add_weight(name="output_weights", shape=(num_outputs, hidden_size),
                             initializer=create_initializer(initializer_range))
  bias = layer.add_weight(name="output_bias", shape=(num_outputs,), initializer="zeros")
  return weights, bias


def project(x, weights, bias):
  """x [..., H] @ weights[K, H]^T + bias -> [..., K], in float32 for the losses."""
  x = tf.cast(x, tf.float32)
  weights = tf.cast(weights, tf.float32)
  if x.shape.rank == 2:
    return tf.matmul(x, weights, transpose_b=True) + tf.cast(bias, tf.float32)
  # One [M, H] x [H, K] matmul: a batched matmul against the broadcast [K, H] table would make
  # its gradient a [B, K, H] stack summed over B (the MLM head's dominant cost).
  lead = tf.shape(x)[:-1]
  y = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), weights, transpose_b=True)   # [M, K]
  y = tf.reshape(y + tf.cast(bias, tf.float32), tf.concat([lead, [-1]], 0))  # [..., K]
  y.set_shape(x.shape[:-1].concatenate(weights.shape[:1]))
  return y


@keras.saving.register_keras_serializable(package="official_bert")
class OutputProjection(keras.layers.Layer):
  """A named scope holding one GR output projection (e.g. `seq_relationship`, `squad`)."""

  def __init__(self, num_outputs, initializer_range=0.02, name=None, **kwargs):
    super().__init__(name=name, **kwargs)
    self.num_outputs = num_outputs
    self.initializer_range = initializer_range

  def build(self, input_shape):
    self.output_weights, self.output_bias = add_output_projection(
        self, self.num_outputs, input_shape[-1], self.initializer_range)

  def call(self, x):
    return project(x, self.output_weights, self.output_bias)

  def get_config(self):
    return {**super().get_config(), "num_outputs": self.num_outputs,
            "initializer_range": self.initializer_range}


@keras.saving.register_keras_serializable(package="official_bert")
class MaskedLMTransform(keras.layers.Layer):
  """Scope `transform`: dense + activation + LayerNorm before the MLM decoder."""

  def __init__(self, hidden_size, hidden_act, initializer_range, name="transform", **kwargs):
    super().__init__(name=name, **kwargs)
    self._config = dict(hidden_size=hidden_size, hidden_act=hidden_act,
                        initializer_range=initializer_range)
    self.dense = keras.layers.Dense(hidden_size, activation=get_activation(hidden_act),
                                    kernel_initializer=create_initializer(initializer_range),
                                    name="dense")
    self.layer_norm = layer_norm()

  def build(self, input_shape):
    self.dense.build(input_shape)
    self.layer_norm.build(input_shape)

  def call(self, x):
    return self.layer_norm(self.dense(x))

  def get_config(self):
    return {**super().get_config(), **self._config}


@keras.saving.register_keras_serializable(package="official_bert")
class MaskedLMHead(keras.layers.Layer):
  """Scope `predictions`: logits over the vocabulary at the masked positions.

  The decoder is the word-embedding table (tied), plus a per-token `output_bias`.
  """

  def __init__(self, vocab_size, hidden_size, hidden_act, initializer_range,
               name="predictions", **kwargs):
    super().__init__(name=name, **kwargs)
    self._config = dict(vocab_size=vocab_size, hidden_size=hidden_size, hidden_act=hidden_act,
                        initializer_range=initializer_range)
    self.vocab_size = vocab_size
    self.transform = MaskedLMTransform(hidden_size, hidden_act, initializer_range)

  def build(self, input_shape):
    self.transform.build(input_shape)
    self.output_bias = self.add_weight(name="output_bias", shape=(self.vocab_size,),
                                       initializer="zeros")

  def call(self, sequence_output, masked_lm_positions, embedding_table):
    # sequence_output: [B, S, H]; masked_lm_positions: [B, P]; embedding_table: [V, H].
    # masked_lm_positions=None: sequence_output is already [B, P, H] at the masked positions.
    if masked_lm_positions is not None:
      sequence_output = gather_indexes(sequence_output, masked_lm_positions)  # [B, P, H]
    x = self.transform(sequence_output)                                       # [B, P, H]
    return project(x, embedding_table, self.output_bias)                      # [B, P, V]

  def get_config(self):
    return {**super().get_config(), **self._config}


@keras.saving.register_keras_serializable(package="official_bert")
class PretrainingHeads(keras.layers.Layer):
  """Scope `cls`: the masked-LM head and the next-sentence head."""

  def __init__(self, vocab_size, hidden_size, hidden_act, initializer_range, name="cls",
               **kwargs):
    super().__init__(name=name, **kwargs)
    self._config = dict(vocab_size=vocab_size, hidden_size=hidden_size, hidden_act=hidden_act,
                        initializer_range=initializer_range)
    self.predictions = MaskedLMHead(vocab_size, hidden_size, hidden_act, initializer_range)
    self.seq_relationship = OutputProjection(2, initializer_range, name="seq_relationship")

  def build(self, input_shape):
    # input_shape: the sequence output's [B, S, H].
    self.predictions.build(input_shape)
    self.seq_relationship.build((input_shape[0], input_shape[-1]))

  def call(self, sequence_output, pooled_output, masked_lm_positions, embedding_table):
    return (self.predictions(sequence_output, masked_lm_positions, embedding_table),
            self.seq_relationship(pooled_output))                             # [B, P, V], [B, 2]

  def get_config(self):
    return {**super().get_config(), **self._config}


@keras.saving.register_keras_serializable(package="official_bert")
class SpanHead(keras.layers.Layer):
  """Scope `cls` holding `squad`: start/end logits from a [2, H] projection of every token."""

  def __init__(self, initializer_range, name="cls", **kwargs):
    super().__init__(name=name, **kwargs)
    self.initializer_range = initializer_range
    self.squad = OutputProjection(2, initializer_range, name="squad")

  def build(self, input_shape):
    self.squad.build(input_shape)

  def call(self, sequence_output):
    logits = self.squad(sequence_output)                                      # [B, S, 2]
    return logits[..., 0], logits[..., 1]

  def get_config(self):
    return {**super().get_config(), "initializer_range": self.initializer_range}
