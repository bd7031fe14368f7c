"""GR's `attention_layer` (scope `attention/self`) and the attention block around it.

Dimension legend, as in GR:
  B = batch size, F = `from` length, T = `to` length, N = attention heads,
  D = size per head, H = hidden size (N * D).
"""

import math

import keras
import tensorflow as tf

from official_bert.layers.common import Dropout, create_initializer, layer_norm


def attention_mask_from_input_mask(input_mask, dtype=tf.float32):
  """[B, T] 0/1 mask -> [B, F=T, T] mask: every position may attend to every real token."""
  # expand_dims, not [:, tf.newaxis]: TFLite's builtin strided slice has no new axes.
  to_mask = tf.expand_dims(tf.cast(input_mask, dtype), 1)                 # [B, 1, T]
  from_ones = tf.expand_dims(tf.ones_like(input_mask, dtype=dtype), 2)    # [B, F, 1]
  return from_ones * to_mask                                              # [B, F, T]


@keras.saving.register_keras_serializable(package="official_bert")
class SelfAttention(keras.layers.Layer):
  """Scaled dot-product multi-head attention; variables query/key/value {kernel [H, H], bias}."""

  def __init__(self, num_attention_heads, hidden_size, attention_probs_dropout_prob,
               initializer_range, name="self", **kwargs):
    super().__init__(name=name, **kwargs)
    self._config = dict(num_attention_heads=num_attention_heads, hidden_size=hidden_size,
                        attention_probs_dropout_prob=attention_probs_dropout_prob,
                        initializer_range=initializer_range)
    self.num_heads = num_attention_heads
    self.head_size = hidden_size // num_attention_heads
    init = create_initializer(initializer_range)
    self.query = keras.layers.Dense(hidden_size, kernel_initializer=init, name="query")
    self.key = keras.layers.Dense(hidden_size, kernel_initializer=init, name="key")
    self.value = keras.layers.Dense(hidden_size, kernel_initializer=init, name="value")
    self.dropout = Dropout(attention_probs_dropout_prob)

  def build(self, input_shape):
    for dense in (self.query, self.key, self.value):
      dense.build(input_shape)

  def _split_heads(self, x):
    # [B, S, H] -> [B, N, S, D]
    b, s = tf.shape(x)[0], tf.shape(x)[1]
    x = tf.reshape(x, [b, s, self.num_heads, self.head_size])
    return tf.transpose(x, [0, 2, 1, 3])

  def call(self, hidden_states, attention_mask=None, training=False, query_states=None):
    # hidden_states: [B, T, H] (keys, values; and queries unless query_states [B, F, H] is
    # given); attention_mask: [B, F, T] of 1 (attend) / 0 (masked).
    queries = hidden_states if query_states is None else query_states
    q = self._split_heads(self.query(queries))                           # [B, N, F, D]
    k = self._split_heads(self.key(hidden_states))                       # [B, N, T, D]
    v = self._split_heads(self.value(hidden_states))                     # [B, N, T, D]
    scores = tf.matmul(q, k, transpose_b=True)                           # [B, N, F, T]
    # Softmax in float32: half-precision logits overflow with GR's -10000 adder.
    scores = tf.cast(scores, tf.float32) * (1.0 / math.sqrt(float(self.head_size)))
    if attention_mask is not None:
      adder = (1.0 - tf.cast(attention_mask[:, tf.newaxis], tf.float32)) * -10000.0
      scores += adder                                                     # [B, N, F, T]
    probs = tf.nn.softmax(scores)
    probs = self.dropout(tf.cast(probs, self.compute_dtype), training=training)
    context = tf.matmul(probs, v)                                        # [B, N, F, D]
    context = tf.transpose(context, [0, 2, 1, 3])                        # [B, F, N, D]
    b, f = tf.shape(context)[0], tf.shape(context)[1]
    return tf.reshape(context, [b, f, self.num_heads * self.head_size])  # [B, F, H]

  def get_config(self):
    return {**super().get_config(), **self._config}


@keras.saving.register_keras_serializable(package="official_bert")
class DenseResidualNorm(keras.layers.Layer):
  """GR's output block, scope `output`: dense + dropout, add the residual, LayerNorm.

  GR ends both sub-blocks of a layer with it: after the attention (scope `attention/output`)
  and after the feed-forward (scope `output`). Variables `dense/{kernel,bias}`,
  `LayerNorm/{gamma,beta}`.
  """

  def __init__(self, hidden_size, hidden_dropout_prob, initializer_range, name="output",
               **kwargs):
    super().__init__(name=name, **kwargs)
    self._config = dict(hidden_size=hidden_size, hidden_dropout_prob=hidden_dropout_prob,
                        initializer_range=initializer_range)
    self.dense = keras.layers.Dense(
        hidden_size, kernel_initializer=create_initializer(initializer_range), name="dense")
    self.dropout = Dropout(hidden_dropout_prob)
    self.layer_norm = layer_norm()

  def build(self, input_shape):
    self.dense.build(input_shape)
    self.layer_norm.build(input_shape[:-1] + (self.dense.units,))

  def call(self, x, residual, training=False):
    x = self.dropout(self.dense(x), training=training)
    return self.layer_norm(tf.cast(x, tf.float32) + tf.cast(residual, tf.float32))

  def get_config(self):
    return {**super().get_config(), **self._config}


@keras.saving.register_keras_serializable(package="official_bert")
class AttentionBlock(keras.layers.Layer):
  """Scope `attention`: `self` (multi-head attention) then `output` (dense, residual, LN)."""

  def __init__(self, num_attention_heads, hidden_size, attention_probs_dropout_prob,
               hidden_dropout_prob, initializer_range, name="attention", **kwargs):
    super().__init__(name=name, **kwargs)
    self._config = dict(num_attention_heads=num_attention_heads, hidden_size=hidden_size,
                        attention_probs_dropout_prob=attention_probs_dropout_prob,
                        hidden_dropout_prob=hidden_dropout_prob,
                        initializer_range=initializer_range)
    self.self_attention = SelfAttention(num_attention_heads, hidden_size,
                                        attention_probs_dropout_prob, initializer_range)
    self.attention_output = DenseResidualNorm(hidden_size, hidden_dropout_prob,
                                              initializer_range)

  def build(self, input_shape):
    self.self_attention.build(input_shape)
    self.attention_output.build(input_shape)

  def call(self, hidden_states, attention_mask=None, training=False, query_states=None):
    # query_states [B, F, H]: outputs for those rows only (see TransformerLayer).
    context = self.self_attention(hidden_states, attention_mask, training=training,
                                  query_states=query_states)
    residual = hidden_states if query_states is None else query_states
    return self.attention_output(context, residual, training=training)

  def get_config(self):
    return {**super().get_config(), **self._config}
