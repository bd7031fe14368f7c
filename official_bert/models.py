"""Encoder + head models for pre-training and each fine-tuning task (losses: official_bert.tasks).

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
    if self.pooling == "cls":
      # Only [CLS] is read: the last layer runs its queries and feed-forward on that row alone
      # (F = 0 extra positions); the pooled output equals the full model's.
      no_positions = tf.zeros([tf.shape(features["input_ids"])[0], 0], tf.int32)  # [B, 0]
      outputs = self.bert(features, training=training, output_positions=no_positions)
      pooled = outputs["pooled_output"]                                 # [B, H]
    else:
      outputs = self.bert(features, training=training)
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
  mask = tf.expand_dims(tf.cast(input_mask, sequence.dtype), -1)        # [B, S, 1]; TFLite-safe
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
