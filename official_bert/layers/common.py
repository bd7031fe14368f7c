"""Helpers shared by the layers: GR's initializer and LayerNorm."""

import keras


def create_initializer(initializer_range=0.02):
  """GR's weight initializer: truncated normal with stddev initializer_range."""
  return keras.initializers.TruncatedNormal(stddev=initializer_range)


def layer_norm(name="LayerNorm"):
  """GR's LayerNorm over the last axis, eps 1e-12, variables gamma/beta; kept in float32
  under mixed precision because its variance underflows in half precision."""
  return keras.layers.LayerNormalization(axis=-1, epsilon=1e-12, name=name, dtype="float32")
