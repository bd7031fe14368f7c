"""GR's `transformer_model` (scope `bert/encoder`) and the pooler (scope `bert/pooler`)."""

import keras
import tensorflow as tf

from official_bert.layers.activations import get_activation
from official_bert.layers.attention import AttentionBlock, DenseResidualNorm
from official_bert.layers.common import create_initializer, gather_indexes


@keras.saving.register_keras_serializable(package="official_bert")
class Intermediate(keras.layers.Layer):
  """Scope `intermediate`: the feed-forward's first dense ([H] -> [I]) with the activation."""

  def __init__(self, intermediate_size, hidden_act, initializer_range, name="intermediate",
               **kwargs):
    super().__init__(name=name, **kwargs)
    self._config = dict(intermediate_size=intermediate_size, hidden_act=hidden_act,
                        initializer_range=initializer_range)
    self.dense = keras.layers.Dense(
        intermediate_size, activation=get_activation(hidden_act),
        kernel_initializer=create_initializer(initializer_range), name="dense")

  def build(self, input_shape):
    self.dense.build(input_shape)

  def call(self, x):
    return self.dense(x)

  def get_config(self):
    return {**super().get_config(), **self._config}


@keras.saving.register_keras_serializable(package="official_bert")
class TransformerLayer(keras.layers.Layer):
  """One post-LN block, scope `layer_N`: attention, intermediate/dense, output/{dense,LayerNorm}."""

  def __init__(self, hidden_size, num_attention_heads, intermediate_size, hidden_act,
               hidden_dropout_prob, attention_probs_dropout_prob, initializer_range,
               name="layer_0", **kwargs):
    super().__init__(name=name, **kwargs)
    self._config = dict(hidden_size=hidden_size, num_attention_heads=num_attention_heads,
                        intermediate_size=intermediate_size, hidden_act=hidden_act,
                        hidden_dropout_prob=hidden_dropout_prob,
                        attention_probs_dropout_prob=attention_probs_dropout_prob,
                        initializer_range=initializer_range)
    self.attention = AttentionBlock(num_attention_heads, hidden_size,
                                    attention_probs_dropout_prob, hidden_dropout_prob,
                                    initializer_range)
    self.intermediate = Intermediate(intermediate_size, hidden_act, initializer_range)
    self.output_block = DenseResidualNorm(hidden_size, hidden_dropout_prob, initializer_range)

  def build(self, input_shape):
    self.attention.build(input_shape)
    self.intermediate.build(input_shape)
    self.output_block.build(input_shape[:-1] + (self.intermediate.dense.units,))

  def call(self, hidden_states, attention_mask=None, training=False, output_positions=None):
    # hidden_states: [B, S, H]; attention_mask: [B, S, S]. output_positions [B, F]: the block's
    # output at those positions only, [B, F, H], the same values: only the queries, the residual
    # and the feed-forward shrink to F rows; keys and values still cover all S positions.
    query_states = None
    if output_positions is not None:
      query_states = gather_indexes(hidden_states, output_positions)    # [B, F, H]
      if attention_mask is not None:
        attention_mask = gather_indexes(attention_mask, output_positions)  # [B, F, S]
    attention_output = self.attention(hidden_states, attention_mask, training=training,
                                      query_states=query_states)
    intermediate_output = self.intermediate(attention_output)            # [B, S or F, I]
    return self.output_block(intermediate_output, attention_output, training=training)

  def get_config(self):
    return {**super().get_config(), **self._config}


@keras.saving.register_keras_serializable(package="official_bert")
class TransformerEncoder(keras.layers.Layer):
  """Scope `encoder`: `num_hidden_layers` TransformerLayers; returns every layer's output."""

  def __init__(self, num_hidden_layers, hidden_size, num_attention_heads, intermediate_size,
               hidden_act, hidden_dropout_prob, attention_probs_dropout_prob, initializer_range,
               name="encoder", **kwargs):
    super().__init__(name=name, **kwargs)
    layer_config = dict(hidden_size=hidden_size, num_attention_heads=num_attention_heads,
                        intermediate_size=intermediate_size, hidden_act=hidden_act,
                        hidden_dropout_prob=hidden_dropout_prob,
                        attention_probs_dropout_prob=attention_probs_dropout_prob,
                        initializer_range=initializer_range)
    self._config = dict(num_hidden_layers=num_hidden_layers, **layer_config)
    self.blocks = [TransformerLayer(name=f"layer_{i}", **layer_config)
                   for i in range(num_hidden_layers)]

  def build(self, input_shape):
    for block in self.blocks:
      block.build(input_shape)

  def call(self, hidden_states, attention_mask=None, training=False, output_positions=None):
    """output_positions [B, F]: the last layer only at those positions ([B, F, H])."""
    all_layers = []
    for i, block in enumerate(self.blocks):
      last = i == len(self.blocks) - 1
      hidden_states = block(hidden_states, attention_mask, training=training,
                            output_positions=output_positions if last else None)
      all_layers.append(hidden_states)
    return all_layers

  def get_config(self):
    return {**super().get_config(), **self._config}


@keras.saving.register_keras_serializable(package="official_bert")
class Pooler(keras.layers.Layer):
  """Scope `pooler`: tanh dense on the first token ([CLS]) of the last layer."""

  def __init__(self, hidden_size, initializer_range, name="pooler", **kwargs):
    super().__init__(name=name, **kwargs)
    self._config = dict(hidden_size=hidden_size, initializer_range=initializer_range)
    self.dense = keras.layers.Dense(hidden_size, activation="tanh",
                                    kernel_initializer=create_initializer(initializer_range),
                                    name="dense")

  def build(self, input_shape):
    self.dense.build((input_shape[0], input_shape[-1]))

  def call(self, sequence_output):
    return self.dense(sequence_output[:, 0, :])                          # [B, H]

  def get_config(self):
    return {**super().get_config(), **self._config}
