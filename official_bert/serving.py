"""SavedModel exports that take raw strings: the tokenizer runs in the graph (tensorflow-text ops).

Load an export in any process after `import tensorflow_text` (it registers the ops).
"""

from absl import logging
import tensorflow as tf

from official_bert.layers import preprocessing
from official_bert.utils import atomic_dir


class ClassifierServer(tf.Module):
  """Strings -> BertPreprocessor -> BertClassifier -> probabilities (or STS-B scores)."""

  def __init__(self, model, preprocessor, is_regression):
    super().__init__()
    self.model = model
    self.preprocessor = preprocessor
    self.is_regression = is_regression

  def _outputs(self, texts):
    features = self.preprocessor(texts)  # input_ids / input_mask / segment_ids [B, S]
    logits = tf.cast(self.model(features, training=False), tf.float32)  # [B, L]
    if self.is_regression:
      return {"scores": logits[:, 0]}
    return {"probabilities": tf.nn.softmax(logits, axis=-1)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentence")])
  def single_sentence(self, sentence):
    return self._outputs([sentence])

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentence"),
                                tf.TensorSpec([None], tf.string, name="sentence2")])
  def sentence_pair(self, sentence, sentence2):
    return self._outputs([sentence, sentence2])


def export_classifier(model, vocab_file, do_lower_case, max_seq_length, is_regression, pair,
                      export_dir):
  """Writes the SavedModel of a built, restored BertClassifier to export_dir (atomically)."""
  preprocessor = preprocessing.BertPreprocessor(vocab_file, do_lower_case, max_seq_length)
  server = ClassifierServer(model, preprocessor, is_regression)
  signatures = {
      "serving_default": server.sentence_pair if pair else server.single_sentence,
      "single_sentence": server.single_sentence,
      "sentence_pair": server.sentence_pair,
  }
  # Written beside an existing export, which is replaced only once the new one is complete.
  with atomic_dir(export_dir) as tmp:
    tf.saved_model.save(server, tmp, signatures=signatures)
  logging.info("Exported %s", export_dir)
