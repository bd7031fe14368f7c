"""Helpers shared by the layers: GR's initializer, LayerNorm and dropout."""

import keras
import tensorflow as tf


def create_initializer(initializer_range=0.02):
  """GR's weight initializer: truncated normal with stddev initializer_range."""
  return keras.initializers.TruncatedNormal(stddev=initializer_range)


def gather_indexes(sequence_tensor, positions):
  """[B, S, ...] and [B, P] positions -> [B, P, ...]."""
  return tf.gather(sequence_tensor, tf.cast(positions, tf.int32), batch_dims=1)


def layer_norm(name="LayerNorm"):
  """GR's LayerNorm over the last axis, eps 1e-12, variables gamma/beta; kept in float32
  under mixed precision because its variance underflows in half precision."""
  return keras.layers.LayerNormalization(axis=-1, epsilon=1e-12, name=name, dtype="float32")


@keras.saving.register_keras_serializable(package="official_bert")
class Dropout(keras.layers.Dropout):
  """keras Dropout (same rate, seeding and checkpointed seed state) drawing 16 random bits per
  element instead of a float32 uniform: an element is dropped when its bits fall below
  round(rate * 2^16), i.e. with probability `rate` to within 2^-17. Half the random numbers
  (Philox), and a multiply by the scaled mask instead of a select: dropout was ~10 % of a
  small BERT's CPU train step."""

  def call(self, inputs, training=False):
    if not training or self.rate == 0 or self.rate >= 1 or self.noise_shape is not None:
      return super().call(inputs, training=training)
    seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)
    size = inputs.shape.num_elements()
    if size is None:
      size = tf.size(inputs)
    bits = tf.random.stateless_uniform([(size + 1) // 2], seed, minval=None, maxval=None,
                                       dtype=tf.uint32)
    bits = tf.reshape(tf.bitcast(bits, tf.uint16), [-1])                 # [2 * ceil(size / 2)]
    if not isinstance(size, int) or size % 2:
      bits = bits[:size]
    keep = tf.reshape(bits >= int(round(self.rate * 65536)), tf.shape(inputs))
    scaled_mask = tf.cast(keep, inputs.dtype) * tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
    return inputs * scaled_mask
