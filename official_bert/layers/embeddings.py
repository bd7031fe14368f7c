"""GR's `embedding_lookup` + `embedding_postprocessor` as one layer, scope `bert/embeddings`."""

import keras
import tensorflow as tf

from official_bert.layers.common import Dropout, create_initializer, layer_norm


@keras.saving.register_keras_serializable(package="official_bert")
class BertEmbeddings(keras.layers.Layer):
  """Word + token-type + position embeddings, then LayerNorm and dropout.

  Variables (GR's names): word_embeddings [V, H], token_type_embeddings [T, H],
  position_embeddings [P, H], LayerNorm/{gamma,beta}.
  """

  def __init__(self, vocab_size, hidden_size, type_vocab_size, max_position_embeddings,
               hidden_dropout_prob, initializer_range, name="embeddings", **kwargs):
    super().__init__(name=name, **kwargs)
    self.vocab_size = vocab_size
    self.hidden_size = hidden_size
    self.type_vocab_size = type_vocab_size
    self.max_position_embeddings = max_position_embeddings
    self.initializer_range = initializer_range
    self.layer_norm = layer_norm()
    self.dropout = Dropout(hidden_dropout_prob)

  def build(self, input_shape=None):
    init = create_initializer(self.initializer_range)
    self.word_embeddings = self.add_weight(
        name="word_embeddings", shape=(self.vocab_size, self.hidden_size), initializer=init)
    self.token_type_embeddings = self.add_weight(
        name="token_type_embeddings", shape=(self.type_vocab_size, self.hidden_size),
        initializer=init)
    self.position_embeddings = self.add_weight(
        name="position_embeddings", shape=(self.max_position_embeddings, self.hidden_size),
        initializer=init)
    self.layer_norm.build((None, None, self.hidden_size))

  def call(self, input_ids, segment_ids, training=False):
    # input_ids, segment_ids: [B, S] int.
    seq_length = tf.shape(input_ids)[1]
    output = tf.gather(self.word_embeddings, input_ids)                  # [B, S, H]
    # GR multiplies a one-hot matrix on TPU; a gather is the same sum with one term.
    output += tf.gather(self.token_type_embeddings, segment_ids)         # [B, S, H]
    output += self.position_embeddings[tf.newaxis, :seq_length, :]       # [1, S, H]
    output = self.layer_norm(output)
    return self.dropout(output, training=training)

  def get_config(self):
    config = super().get_config()
    config.update(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                  type_vocab_size=self.type_vocab_size,
                  max_position_embeddings=self.max_position_embeddings,
                  hidden_dropout_prob=self.dropout.rate, initializer_range=self.initializer_range)
    return config
