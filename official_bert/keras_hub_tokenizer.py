"""A keras-hub BertTokenizer that lower-cases as GR does (opt-in for keras_hub exports).

keras-hub lower-cases with tf_text.case_fold_utf8, which applies NFKC case folding: compatibility
characters change before WordPiece ("5½" -> "51⁄2", "ﬁ" -> "fi", "ß" -> "ss"), so some texts
tokenise differently from GR's BasicTokenizer (str.lower(), then accents stripped). No keras-hub
setting avoids it. GRBertTokenizer lower-cases with Unicode case mapping only (str.lower() on
Python strings, tf.strings.lower(encoding="utf-8") on tensors) and leaves accent stripping and
splitting to keras-hub, which already do what GR does.

It is registered with Keras as "official_bert>GRBertTokenizer": a preset whose tokenizer.json
names it (convert_checkpoint --keras_hub_gr_tokenizer) loads with
keras_hub.models.BertTokenizer.from_preset once this module has been imported.
"""

import keras
import keras_hub
import tensorflow as tf


@keras.saving.register_keras_serializable(package="official_bert")
class GRBertTokenizer(keras_hub.models.BertTokenizer):
  """keras_hub.models.BertTokenizer with GR's lower-casing (see the module docstring)."""

  def __init__(self, vocabulary=None, lowercase=False, **kwargs):
    if lowercase and kwargs.get("special_tokens_in_strings"):
      raise ValueError("GRBertTokenizer lower-cases special tokens in strings as GR does; "
                       "special_tokens_in_strings=True needs keras_hub.models.BertTokenizer")
    # keras-hub's own lower-casing stays off; tokenize() lower-cases first.
    super().__init__(vocabulary=vocabulary, lowercase=False, **kwargs)
    self.gr_lowercase = bool(lowercase)

  def tokenize(self, inputs):
    if self.gr_lowercase:
      inputs = _lower(inputs)
    return super().tokenize(inputs)

  def get_config(self):
    return dict(super().get_config(), lowercase=self.gr_lowercase)


def _lower(inputs):
  if isinstance(inputs, bytes):
    inputs = inputs.decode("utf-8")
  if isinstance(inputs, str):
    return inputs.lower()
  if isinstance(inputs, (list, tuple)):
    return [_lower(x) for x in inputs]
  return tf.strings.lower(inputs, encoding="utf-8")
