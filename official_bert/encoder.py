"""The BERT encoder (GR's `BertModel`, variable scope `bert`)."""

import keras
import tensorflow as tf

from official_bert import configs
from official_bert.layers import (BertEmbeddings, Pooler, TransformerEncoder,
                                  attention_mask_from_input_mask)


class ConfiguredModel(keras.Model):
  """A model built from a BertConfig: serialisable (`get_config` holds GR's config dict) and
  loadable by name with `from_preset`. Every variable exists after `build()`."""

  def __init__(self, config, name=None, **kwargs):
    super().__init__(name=name, **kwargs)
    self.config = configs.BertConfig.coerce(config)

  def get_config(self):
    return {**super().get_config(), "config": self.config.to_dict()}

  def get_build_config(self):
    # build() needs no shapes; the default would record the dict of input shapes.
    return {"input_shape": None}

  @classmethod
  def from_preset(cls, preset, load_weights=True, **kwargs):
    """A model from a preset name (official_bert.presets.PRESETS) or a checkpoint directory
    (GR release folder, HF, keras-hub, ours): its config, and its weights when there are
    any and `load_weights`. kwargs go to the constructor (e.g. num_labels)."""
    from official_bert import presets  # pylint: disable=import-outside-toplevel
    return presets.build_model(cls, preset, load_weights=load_weights, **kwargs)


@keras.saving.register_keras_serializable(package="official_bert")
class BertModel(ConfiguredModel):
  """GR's BertModel: embeddings -> transformer encoder -> pooler.

  Call with a dict of int tensors [B, S]: `input_ids`, and optionally `input_mask`
  (1 = real token; default all ones) and `segment_ids` (default all zeros). Returns a dict:
    sequence_output [B, S, H], pooled_output [B, H], all_encoder_layers (list of [B, S, H]),
    embedding_output [B, S, H].
  output_positions [B, F] (optional): sequence_output is [B, F, H] at those positions, the same
  values, and the last layer runs only for them and [CLS] (its all_encoder_layers entry is
  [B, 1 + F, H], [CLS] first). Pre-training needs only the masked positions: with P of S
  positions the last layer costs about (2 S + 10 P) / 12 S of a full one.
  """

  def __init__(self, config, name="bert", **kwargs):
    # config: a BertConfig or GR's bert_config.json dict.
    super().__init__(config, name=name, **kwargs)
    config = self.config
    self.embeddings = BertEmbeddings(
        config.vocab_size, config.hidden_size, config.type_vocab_size,
        config.max_position_embeddings, config.hidden_dropout_prob, config.initializer_range)
    self.encoder = TransformerEncoder(
        config.num_hidden_layers, hidden_size=config.hidden_size,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size, hidden_act=config.hidden_act,
        hidden_dropout_prob=config.hidden_dropout_prob,
        attention_probs_dropout_prob=config.attention_probs_dropout_prob,
        initializer_range=config.initializer_range)
    self.pooler = Pooler(config.hidden_size, config.initializer_range)

  def build(self, input_shape=None):
    # Builds every variable by name up front, so a checkpoint can be restored before any call.
    shape = (None, None, self.config.hidden_size)
    self.embeddings.build(None)
    self.encoder.build(shape)
    self.pooler.build(shape)
    self.built = True

  @property
  def embedding_table(self):
    return self.embeddings.word_embeddings                              # [V, H]

  def call(self, inputs, training=False, output_positions=None):
    input_ids = inputs["input_ids"]                                      # [B, S]
    input_mask = inputs.get("input_mask")
    if input_mask is None:
      input_mask = tf.ones_like(input_ids)
    segment_ids = inputs.get("segment_ids")
    if segment_ids is None:
      segment_ids = tf.zeros_like(input_ids)
    embedding_output = self.embeddings(input_ids, segment_ids, training=training)
    attention_mask = attention_mask_from_input_mask(input_mask)          # [B, S, S]
    if output_positions is not None:  # [CLS] first, for the pooler
      output_positions = tf.cast(output_positions, tf.int32)
      output_positions = tf.concat([tf.zeros_like(output_positions[:, :1]), output_positions], 1)
    all_layers = self.encoder(embedding_output, attention_mask, training=training,
                              output_positions=output_positions)
    sequence_output = all_layers[-1]
    pooled_output = self.pooler(sequence_output)                         # [CLS] is row 0
    if output_positions is not None:
      sequence_output = sequence_output[:, 1:]                           # [B, F, H]
    return dict(sequence_output=sequence_output,
                pooled_output=pooled_output,
                all_encoder_layers=all_layers,
                embedding_output=embedding_output)
