"""SavedModel exports that take raw strings: the tokenizer runs in the graph (tensorflow-text ops).

  export_classifier: (sentence[, sentence2]) -> probabilities (or STS-B scores)
  export_encoder:    (sentence[, sentence2]) -> pooled_output [B, H], sequence_output [B, S, H]
  export_span_labeler (SQuAD): (question, context) -> start/end logits [B, S] and answer text
  export_tagger (NER): text -> words and per-word tags [B, W]
  classifier_to_tflite: the classifier alone (int32 features in) as TFLite, float or int8

Load an export in any process after `import tensorflow_text` (it registers the ops), or with
`serving.load(path)`, which says so when the ops are missing.
"""

import os
import tempfile

from absl import logging
import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from official_bert.data import records
from official_bert.layers import preprocessing
from official_bert import progress
from official_bert.utils import atomic_dir

class _TextServer(tf.Module):
  """A model behind BertPreprocessor with one- and two-text signatures; subclasses give _outputs."""

  def __init__(self, model, preprocessor):
    super().__init__()
    self.model = model
    self.preprocessor = preprocessor

  def _outputs(self, texts):
    raise NotImplementedError

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentence")])
  def single_sentence(self, sentence):
    return self._outputs([sentence])

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentence"),
                                tf.TensorSpec([None], tf.string, name="sentence2")])
  def sentence_pair(self, sentence, sentence2):
    return self._outputs([sentence, sentence2])


class ClassifierServer(_TextServer):
  """Strings -> BertPreprocessor -> BertClassifier -> probabilities (or STS-B scores)."""

  def __init__(self, model, preprocessor, is_regression, jit_compile=False, xla_bucket=16):
    super().__init__(model, preprocessor)
    self.is_regression = is_regression
    self._jit_compile = jit_compile
    self._xla_bucket = xla_bucket

  def _outputs(self, texts):
    features = self.preprocessor(texts)  # input_ids / input_mask / segment_ids [B, S]
    # Cut to the batch's longest text: the same logits, far less work for short texts.
    features = records.trim_padding(                                     # [B, S' <= S]
        features, self._xla_bucket if self._jit_compile else 1)
    if self._jit_compile:
      logits = _xla_call(self.model, features)
    else:
      logits = self.model(features, training=False)
    logits = tf.cast(logits, tf.float32)                                 # [B, L]
    if self.is_regression:
      return {"scores": logits[:, 0]}
    return {"probabilities": tf.nn.softmax(logits, axis=-1)}


@tf.function(jit_compile=True)
def _xla_call(model, features):
  # One XLA program per (batch size, length bucket), compiled at its first request: the
  # encoder's many small ops fuse, which matters most for batch-1 latency on CPU.
  return model(features, training=False)


class EncoderServer(_TextServer):
  """Strings -> BertPreprocessor -> BertModel -> pooled and sequence output."""

  def _outputs(self, texts):
    features = self.preprocessor(texts)
    out = self.model(features, training=False)
    return {"pooled_output": tf.cast(out["pooled_output"], tf.float32),       # [B, H]
            "sequence_output": tf.cast(out["sequence_output"], tf.float32),   # [B, S, H]
            "input_mask": features["input_mask"]}                             # [B, S]


class SpanServer(tf.Module):
  """(question, context) -> "[CLS] question [SEP] context [SEP]" -> BertSpanLabeler -> the best
  span of the context: the highest start + end logit sum with start <= end and at most
  max_answer_length wordpieces (GR's rule, over all spans rather than its 20 best starts/ends)."""

  def __init__(self, model, preprocessor, max_answer_length=30):
    super().__init__()
    self.model = model
    self.preprocessor = preprocessor
    self.max_answer_length = max_answer_length
    self.vocab = tf.constant(list(preprocessor.tokenizer.vocab))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="question"),
                                tf.TensorSpec([None], tf.string, name="context")])
  def answer(self, question, context):
    f = self.preprocessor([question, context])
    out = self.model(f, training=False)
    start = tf.cast(out["start_logits"], tf.float32)  # [B, S]
    end = tf.cast(out["end_logits"], tf.float32)      # [B, S]
    ids = f["input_ids"]
    seq = tf.shape(ids)[1]
    in_context = (f["segment_ids"] == 1) & (ids != self.preprocessor.tokenizer.sep_id)
    low = tf.float32.min / 4
    scores = (tf.where(in_context, start, low)[:, :, None] +
              tf.where(in_context, end, low)[:, None, :])  # [B, S(start), S(end)]
    band = tf.linalg.band_part(tf.ones([seq, seq]), 0, self.max_answer_length - 1)
    scores = tf.where(band > 0, scores, 2 * low)
    best = tf.argmax(tf.reshape(scores, [tf.shape(ids)[0], -1]), axis=1, output_type=tf.int32)
    first, last = best // seq, best % seq  # [B]
    positions = tf.range(seq)[None, :]
    span = (positions >= first[:, None]) & (positions <= last[:, None])
    pieces = tf.ragged.boolean_mask(tf.gather(self.vocab, ids), span)  # [B, (A)]
    text = tf.strings.regex_replace(tf.strings.reduce_join(pieces, axis=1, separator=" "),
                                    " ##", "")
    return {"start_logits": start, "end_logits": end, "start_position": first,
            "end_position": last, "answer": text}


class TaggerServer(tf.Module):
  """Text -> whitespace words -> first-wordpiece tags (run_ner's alignment) -> [B, W] tags.

  One window of max_seq_length: words whose first wordpiece falls beyond it get the tag "".
  """

  def __init__(self, model, tokenizer, label_list, seq_length):
    super().__init__()
    self.model = model
    self.tokenizer = tokenizer
    self.labels = tf.constant(list(label_list))
    self.seq_length = seq_length

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
  def tag(self, text):
    s = self.seq_length
    words = tf.strings.split(text)  # [B, (W)]
    pieces = self.tokenizer(words.flat_values)  # [N, (t)]
    empty = tf.cast(pieces.row_lengths() == 0, tf.int64)
    unk = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(empty)], self.tokenizer.unk_id), empty)
    pieces = tf.concat([pieces, tf.cast(unk, pieces.dtype)], axis=1)  # a word is >= 1 piece
    counts = words.with_flat_values(pieces.row_lengths())  # [B, (W)]
    first = tf.cumsum(counts, axis=1, exclusive=True) + 1  # [B, (W)] position after [CLS]
    tokens = words.with_flat_values(pieces).merge_dims(1, 2)  # [B, (T)]
    keep = tf.minimum(tokens.row_lengths(), s - 2)
    tokens = tf.ragged.boolean_mask(
        tokens, tf.ragged.range(tokens.row_lengths()) < keep[:, None])
    batch = tokens.nrows()
    cls = tf.fill([batch, 1], tf.cast(self.tokenizer.cls_id, tokens.dtype))
    sep = tf.fill([batch, 1], tf.cast(self.tokenizer.sep_id, tokens.dtype))
    ids = tf.concat([cls, tokens, sep], axis=1)  # [B, (T + 2)]
    input_ids, input_mask = tf_text.pad_model_inputs(ids, s)
    features = {"input_ids": tf.cast(input_ids, tf.int32),
                "input_mask": tf.cast(input_mask, tf.int32),
                "segment_ids": tf.zeros_like(input_ids, tf.int32)}
    predicted = tf.argmax(self.model(features, training=False), axis=-1,
                          output_type=tf.int32)  # [B, S]
    first = first.to_tensor(default_value=s)  # [B, W]
    seen = first < s - 1
    tag_ids = tf.gather(predicted, tf.minimum(tf.cast(first, tf.int32), s - 1), batch_dims=1)
    tags = tf.where(seen, tf.gather(self.labels, tag_ids), "")
    return {"words": words.to_tensor(default_value=""), "tags": tags}


def _stage(heartbeat, what):
  """Starts stage `what` of `heartbeat` (a progress.Heartbeat; None: a line per stage only)."""
  beat = heartbeat or progress.Heartbeat("export", interval_secs=0)
  beat.stage(what)
  return beat


def _save(server, signatures, export_dir, beat):
  """Traces the signatures, then writes the SavedModel (reusing the traces)."""
  functions = list({id(f): f for f in signatures.values()}.values())  # aliases traced once
  beat.stage("tracing signatures", total=len(functions))
  for i, function in enumerate(functions):
    function.get_concrete_function()
    beat.update(i + 1)
  beat.stage(f"writing SavedModel {export_dir}")
  # Written beside an existing export, which is replaced only once the new one is complete.
  with atomic_dir(export_dir) as tmp:
    tf.saved_model.save(server, tmp, signatures=signatures)
  logging.info("Exported %s", export_dir)


def export_classifier(model, vocab_file, do_lower_case, max_seq_length, is_regression, pair,
                      export_dir, jit_compile=False, xla_bucket=16, heartbeat=None):
  """Writes the SavedModel of a built, restored BertClassifier to export_dir (atomically).

  jit_compile: the model runs under XLA, batches cut to a multiple of `xla_bucket` tokens."""
  beat = _stage(heartbeat, f"building the tokenizer {vocab_file}")
  preprocessor = preprocessing.BertPreprocessor(vocab_file, do_lower_case, max_seq_length)
  server = ClassifierServer(model, preprocessor, is_regression, jit_compile, xla_bucket)
  _save(server, {"serving_default": server.sentence_pair if pair else server.single_sentence,
                 "single_sentence": server.single_sentence,
                 "sentence_pair": server.sentence_pair}, export_dir, beat)


def export_encoder(model, vocab_file, do_lower_case, max_seq_length, export_dir, heartbeat=None):
  """A BertModel (the `bert` encoder) as strings -> pooled_output / sequence_output."""
  beat = _stage(heartbeat, f"building the tokenizer {vocab_file}")
  preprocessor = preprocessing.BertPreprocessor(vocab_file, do_lower_case, max_seq_length)
  server = EncoderServer(model, preprocessor)
  _save(server, {"serving_default": server.single_sentence,
                 "single_sentence": server.single_sentence,
                 "sentence_pair": server.sentence_pair}, export_dir, beat)


def export_span_labeler(model, vocab_file, do_lower_case, max_seq_length, export_dir,
                        max_answer_length=30, heartbeat=None):
  """A BertSpanLabeler (run_squad) as (question, context) -> logits and answer text."""
  beat = _stage(heartbeat, f"building the tokenizer {vocab_file}")
  preprocessor = preprocessing.BertPreprocessor(vocab_file, do_lower_case, max_seq_length)
  server = SpanServer(model, preprocessor, max_answer_length)
  _save(server, {"serving_default": server.answer}, export_dir, beat)


def export_tagger(model, vocab_file, do_lower_case, max_seq_length, label_list, export_dir,
                  heartbeat=None):
  """A BertTokenClassifier (run_ner) as text -> per-word tags (label_list order: the model's)."""
  beat = _stage(heartbeat, f"building the tokenizer {vocab_file}")
  tokenizer = preprocessing.BertTokenizerLayer(vocab_file, do_lower_case)
  server = TaggerServer(model, tokenizer, label_list, max_seq_length)
  _save(server, {"serving_default": server.tag}, export_dir, beat)


TFLITE_INPUTS = ("input_ids", "input_mask", "segment_ids")


class _Outputs(keras.Model):
  """The classifier's serving outputs from its logits: probabilities, or STS-B's scores."""

  def __init__(self, model, is_regression):
    super().__init__(name="serving_outputs")
    self.classifier = model
    self.is_regression = is_regression

  def call(self, features):
    logits = tf.cast(self.classifier(features, training=False), tf.float32)
    return logits[:, 0] if self.is_regression else tf.nn.softmax(logits, axis=-1)


def classifier_to_tflite(model, is_regression=False, quantize=False):
  """A built BertClassifier as a TFLite flatbuffer (bytes), builtin ops only, on int32
  input_ids / input_mask / segment_ids [B, S] -> probabilities [B, L] (STS-B: scores [B]).

  Keras' own LiteRT export does the conversion. The tokenizer stays outside (TFLite has no
  tensorflow-text ops); `TFLiteRunner` runs the result.
  quantize: dynamic-range int8 weights (matmul inputs quantized at run time), a quarter the size."""
  outputs = _Outputs(model, is_regression)
  ones = tf.ones([1, 2], tf.int32)
  outputs({name: ones for name in TFLITE_INPUTS})  # Keras exports built models only
  spec = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in TFLITE_INPUTS}
  # No TF (Flex) kernels: TensorFlow's own interpreter has none, so a model needing them should
  # fail here rather than when served.
  options = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
  if quantize:
    options["optimizations"] = [tf.lite.Optimize.DEFAULT]
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "model.tflite")
    outputs.export(path, format="litert", input_signature=[spec], verbose=False, **options)
    with open(path, "rb") as f:
      return f.read()


class TFLiteRunner:
  """Runs a `classifier_to_tflite` flatbuffer on feature dicts of any [B, S]."""

  def __init__(self, flatbuffer, num_threads=None):
    self._interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=num_threads)
    signature = self._interpreter.get_signature_runner()
    self._inputs = {name: d["index"] for name, d in signature.get_input_details().items()}
    self._output = next(iter(signature.get_output_details().values()))["index"]
    self._shape = None

  def __call__(self, features):
    """features: name -> integer array [B, S] (TFLITE_INPUTS) -> the model's output (numpy)."""
    shape = tuple(np.shape(features["input_ids"]))
    if shape != self._shape:  # re-planned only when the batch's shape changes
      for index in self._inputs.values():
        self._interpreter.resize_tensor_input(index, shape)
      self._interpreter.allocate_tensors()
      self._shape = shape
    for name, index in self._inputs.items():
      self._interpreter.set_tensor(index, np.asarray(features[name], np.int32))
    self._interpreter.invoke()
    return self._interpreter.get_tensor(self._output).copy()


def load(export_dir):
  """tf.saved_model.load for these exports; a clear error if the tensorflow-text ops are missing."""
  try:
    return tf.saved_model.load(export_dir)
  except tf.errors.NotFoundError as e:
    if "Op type not registered" not in str(e):
      raise
    raise RuntimeError(
        f"{export_dir}: the SavedModel uses tensorflow-text ops that are not registered in this "
        "process: `import tensorflow_text` before loading it (pip install tensorflow-text)"
    ) from e
