"""SQuAD v1.1 / v2.0 for BERT: JSON -> examples -> windowed features -> TFRecord / tf.data,
and back: start/end logits -> n-best spans -> predictions.json, nbest_predictions.json, null_odds.json.

Follows GR's `run_squad.py` (the contract): whitespace words with char-to-word offsets, answers
kept only when their text can be recovered, sliding windows of `doc_stride` over the WordPiece
document with the "max context" rule, the n-best search and `get_final_text`'s alignment of the
WordPiece answer back onto the original text. This module owns the SQuAD TFRecord format
(GR's feature names: unique_ids, input_ids, input_mask, segment_ids, start_positions,
end_positions, is_impossible).

Legend: S = max_seq_length, B = batch size.
"""

import collections
import dataclasses
import json
import math
from typing import Dict, List, Optional

from absl import logging
import numpy as np
import tensorflow as tf

from official_bert import errors
from official_bert import utils
from official_bert.training import inputs

# GR's first unique_id; features are numbered from here in reading order.
FIRST_UNIQUE_ID = 1000000000


@dataclasses.dataclass
class SquadExample:
  """One question on one paragraph. Positions index `doc_tokens`; -1 when unanswerable."""
  qas_id: str
  question_text: str
  doc_tokens: List[str]
  orig_answer_text: Optional[str] = None
  start_position: Optional[int] = None
  end_position: Optional[int] = None
  is_impossible: bool = False


@dataclasses.dataclass
class InputFeatures:
  """One window of one example: [CLS] query [SEP] doc-window [SEP], padded to S."""
  unique_id: int
  example_index: int
  doc_span_index: int
  tokens: List[str]
  token_to_orig_map: Dict[int, int]     # window position -> index in example.doc_tokens
  token_is_max_context: Dict[int, bool]  # window position -> is this its best window
  input_ids: List[int]
  input_mask: List[int]
  segment_ids: List[int]
  start_position: Optional[int] = None  # in the window; 0 ([CLS]) when not inside it
  end_position: Optional[int] = None
  is_impossible: Optional[bool] = None


RawResult = collections.namedtuple("RawResult", ["unique_id", "start_logits", "end_logits"])


# ----------------------------------------------------------------------------- reading


def _is_whitespace(c):
  # GR's set: Python's isspace() would also split on e.g. U+00A0, changing word boundaries.
  return c in (" ", "\t", "\r", "\n") or ord(c) == 0x202F


def split_into_words(paragraph_text):
  """Whitespace words of a paragraph and, for every character, the index of its word."""
  doc_tokens = []
  char_to_word_offset = []
  prev_is_whitespace = True
  for c in paragraph_text:
    if _is_whitespace(c):
      prev_is_whitespace = True
    else:
      if prev_is_whitespace:
        doc_tokens.append(c)
      else:
        doc_tokens[-1] += c
      prev_is_whitespace = False
    char_to_word_offset.append(len(doc_tokens) - 1)
  return doc_tokens, char_to_word_offset


def _get(obj, key, kind, where, input_file):
  """obj[key] checked for presence and type; errors name the file and the article/question."""
  if not isinstance(obj, dict) or key not in obj:
    raise ValueError(f"{input_file}: {where} has no {key!r} key; "
                     "expected the SQuAD format (see https://rajpurkar.github.io/SQuAD-explorer/)")
  value = obj[key]
  if not isinstance(value, kind):
    raise ValueError(f"{input_file}: {where}: {key!r} should be a {kind.__name__}, "
                     f"got {type(value).__name__}")
  return value


def load_squad_json(input_file):
  """The list of articles (the "data" entry) of a SQuAD JSON file, with readable errors."""
  if not tf.io.gfile.exists(input_file) or tf.io.gfile.isdir(input_file):
    raise errors.UserError("SQuAD file not found", input_file, "give a SQuAD .json file")
  with tf.io.gfile.GFile(input_file, "rb") as reader:
    data = reader.read()
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError as e:
    raise errors.UserError(f"bytes that are not UTF-8 ({data[e.start:e.end]!r})",
                           errors.at(input_file, data.count(b"\n", 0, e.start) + 1),
                           "give a SQuAD .json file (UTF-8; unzip it first)") from None
  try:
    dataset = json.loads(text)
  except json.JSONDecodeError as e:
    raise errors.UserError(f"not valid JSON ({e.msg} at column {e.colno})",
                           errors.at(input_file, e.lineno),
                           "give a SQuAD .json file (unzip it first)") from None
  return _get(dataset, "data", list, "the top level", input_file)


def read_squad_examples(input_file, is_training, version_2_with_negative=False):
  """Reads a SQuAD JSON file into SquadExamples (GR's `read_squad_examples`).

  For training, each answerable question needs exactly one answer; answers whose text cannot be
  found in the whitespace words (odd Unicode) are skipped with a warning, as GR does.
  """
  articles = load_squad_json(input_file)
  examples = []
  num_skipped = 0
  for article_index, article in enumerate(articles):
    title = article.get("title", "") if isinstance(article, dict) else ""
    where_article = f"article {article_index + 1} ({title!r})" if title else (
        f"article {article_index + 1}")
    paragraphs = _get(article, "paragraphs", list, where_article, input_file)
    for paragraph_index, paragraph in enumerate(paragraphs):
      where_par = f"{where_article}, paragraph {paragraph_index + 1}"
      paragraph_text = _get(paragraph, "context", str, where_par, input_file)
      doc_tokens, char_to_word_offset = split_into_words(paragraph_text)
      for qa_index, qa in enumerate(_get(paragraph, "qas", list, where_par, input_file)):
        qas_id = _get(qa, "id", str, f"{where_par}, question {qa_index + 1}", input_file)
        where_qa = f"{where_article}, question id {qas_id!r}"
        question_text = _get(qa, "question", str, where_qa, input_file)
        start_position = end_position = orig_answer_text = None
        is_impossible = False
        if is_training:
          if version_2_with_negative:
            is_impossible = _get(qa, "is_impossible", bool, where_qa, input_file)
          answers = _get(qa, "answers", list, where_qa, input_file)
          if len(answers) != 1 and not is_impossible:
            raise ValueError(
                f"{input_file}: {where_qa} has {len(answers)} answers; for training each "
                "question needs exactly 1 (data_prep/split_squad.py --first_answer_only "
                "keeps the first)")
          if not is_impossible:
            answer = answers[0]
            orig_answer_text = _get(answer, "text", str, where_qa + " answer", input_file)
            answer_offset = _get(answer, "answer_start", int, where_qa + " answer", input_file)
            answer_end = answer_offset + len(orig_answer_text) - 1
            if (answer_offset < 0 or answer_end >= len(paragraph_text)
                or not orig_answer_text):
              raise ValueError(
                  f"{input_file}: {where_qa}: answer_start={answer_offset} with text "
                  f"{orig_answer_text!r} lies outside the context ({len(paragraph_text)} chars)")
            start_position = char_to_word_offset[answer_offset]
            end_position = char_to_word_offset[answer_end]
            # Keep only answers whose text is recoverable from the words (GR's check).
            actual_text = " ".join(doc_tokens[start_position:end_position + 1])
            cleaned_answer_text = " ".join(orig_answer_text.split())
            if actual_text.find(cleaned_answer_text) == -1:
              logging.warning("%s: %s: could not find answer %r in %r; skipped", input_file,
                              where_qa, cleaned_answer_text, actual_text)
              num_skipped += 1
              continue
          else:
            start_position = end_position = -1
            orig_answer_text = ""
        examples.append(SquadExample(
            qas_id=qas_id, question_text=question_text, doc_tokens=doc_tokens,
            orig_answer_text=orig_answer_text, start_position=start_position,
            end_position=end_position, is_impossible=is_impossible))
  logging.info("%s: %d examples read, %d skipped (answer text not recoverable)", input_file,
               len(examples), num_skipped)
  return examples


# ----------------------------------------------------------------------------- features


def _improve_answer_span(doc_tokens, input_start, input_end, tokenizer, orig_answer_text):
  """The tightest WordPiece span inside [input_start, input_end] that spells the answer.

  Character answers are first widened to whole words ("(1895-1943)." for "1895"); WordPiece
  splits the word, so the exact pieces can often be found again.
  """
  tok_answer_text = " ".join(tokenizer.tokenize(orig_answer_text))
  for new_start in range(input_start, input_end + 1):
    for new_end in range(input_end, new_start - 1, -1):
      if " ".join(doc_tokens[new_start:new_end + 1]) == tok_answer_text:
        return new_start, new_end
  return input_start, input_end


DocSpan = collections.namedtuple("DocSpan", ["start", "length"])


def make_doc_spans(num_doc_tokens, max_tokens_for_doc, doc_stride):
  """Windows of at most `max_tokens_for_doc` tokens, each starting `doc_stride` after the last."""
  doc_spans = []
  start_offset = 0
  while start_offset < num_doc_tokens:
    length = min(num_doc_tokens - start_offset, max_tokens_for_doc)
    doc_spans.append(DocSpan(start=start_offset, length=length))
    if start_offset + length == num_doc_tokens:
      break
    start_offset += min(length, doc_stride)
  return doc_spans


def max_context_span_index(doc_spans, position):
  """Index of the window where `position` has the most context: max of min(left, right).

  Ties go to the longer window (+0.01 * length), then to the first, as in GR.
  """
  best_score = None
  best_span_index = None
  for span_index, doc_span in enumerate(doc_spans):
    end = doc_span.start + doc_span.length - 1
    if position < doc_span.start or position > end:
      continue
    score = min(position - doc_span.start, end - position) + 0.01 * doc_span.length
    if best_score is None or score > best_score:
      best_score = score
      best_span_index = span_index
  return best_span_index


def convert_examples_to_features(examples, tokenizer, max_seq_length, doc_stride,
                                 max_query_length, is_training, output_fn=None,
                                 log_first=3):
  """SquadExamples -> InputFeatures, one per doc_stride window (GR's function).

  Args:
    examples: list of SquadExample.
    tokenizer: a FullTokenizer (`tokenize`, `convert_tokens_to_ids`).
    max_seq_length, doc_stride, max_query_length: GR's flags.
    is_training: if True, set start/end positions (0, 0 when the answer is outside the window).
    output_fn: called with each feature; if None the features are returned as a list.
    log_first: how many leading features to log in full.
  Returns:
    The list of features, or their number when output_fn is given.
  """
  if max_seq_length <= max_query_length + 3:
    raise ValueError(f"max_seq_length ({max_seq_length}) must be greater than "
                     f"max_query_length ({max_query_length}) + 3")
  features = []
  collect = output_fn is None
  if collect:
    output_fn = features.append
  unique_id = FIRST_UNIQUE_ID
  # Questions on one paragraph share its doc_tokens list: tokenize each paragraph once.
  doc_cache = {}
  for example_index, example in enumerate(examples):
    query_tokens = tokenizer.tokenize(example.question_text)[:max_query_length]

    key = id(example.doc_tokens)
    if key not in doc_cache or doc_cache[key][0] is not example.doc_tokens:
      tok_to_orig_index = []
      orig_to_tok_index = []
      all_doc_tokens = []
      for i, token in enumerate(example.doc_tokens):
        orig_to_tok_index.append(len(all_doc_tokens))
        for sub_token in tokenizer.tokenize(token):
          tok_to_orig_index.append(i)
          all_doc_tokens.append(sub_token)
      doc_cache = {key: (example.doc_tokens, tok_to_orig_index, orig_to_tok_index,
                         all_doc_tokens)}
    _, tok_to_orig_index, orig_to_tok_index, all_doc_tokens = doc_cache[key]

    tok_start_position = tok_end_position = None
    if is_training and example.is_impossible:
      tok_start_position = tok_end_position = -1
    if is_training and not example.is_impossible:
      tok_start_position = orig_to_tok_index[example.start_position]
      if example.end_position < len(example.doc_tokens) - 1:
        tok_end_position = orig_to_tok_index[example.end_position + 1] - 1
      else:
        tok_end_position = len(all_doc_tokens) - 1
      tok_start_position, tok_end_position = _improve_answer_span(
          all_doc_tokens, tok_start_position, tok_end_position, tokenizer,
          example.orig_answer_text)

    max_tokens_for_doc = max_seq_length - len(query_tokens) - 3  # [CLS], [SEP], [SEP]
    doc_spans = make_doc_spans(len(all_doc_tokens), max_tokens_for_doc, doc_stride)
    # Best window of each doc token, computed once per example.
    best_span = [max_context_span_index(doc_spans, p) for p in range(len(all_doc_tokens))]

    for doc_span_index, doc_span in enumerate(doc_spans):
      tokens = ["[CLS]"] + query_tokens + ["[SEP]"]
      segment_ids = [0] * len(tokens)
      token_to_orig_map = {}
      token_is_max_context = {}
      for i in range(doc_span.length):
        split_token_index = doc_span.start + i
        token_to_orig_map[len(tokens)] = tok_to_orig_index[split_token_index]
        token_is_max_context[len(tokens)] = best_span[split_token_index] == doc_span_index
        tokens.append(all_doc_tokens[split_token_index])
        segment_ids.append(1)
      tokens.append("[SEP]")
      segment_ids.append(1)

      input_ids = tokenizer.convert_tokens_to_ids(tokens)
      input_mask = [1] * len(input_ids)
      padding = max_seq_length - len(input_ids)
      input_ids = input_ids + [0] * padding
      input_mask = input_mask + [0] * padding
      segment_ids = segment_ids + [0] * padding

      start_position = end_position = None
      if is_training and not example.is_impossible:
        doc_start = doc_span.start
        doc_end = doc_span.start + doc_span.length - 1
        if tok_start_position >= doc_start and tok_end_position <= doc_end:
          doc_offset = len(query_tokens) + 2
          start_position = tok_start_position - doc_start + doc_offset
          end_position = tok_end_position - doc_start + doc_offset
        else:  # the answer is not (wholly) in this window: point at [CLS]
          start_position = end_position = 0
      if is_training and example.is_impossible:
        start_position = end_position = 0

      if unique_id - FIRST_UNIQUE_ID < log_first:
        logging.info("*** Example *** unique_id: %d example_index: %d doc_span_index: %d\n"
                     "tokens: %s\nstart_position: %s end_position: %s", unique_id,
                     example_index, doc_span_index, " ".join(tokens), start_position,
                     end_position)

      output_fn(InputFeatures(
          unique_id=unique_id, example_index=example_index, doc_span_index=doc_span_index,
          tokens=tokens, token_to_orig_map=token_to_orig_map,
          token_is_max_context=token_is_max_context, input_ids=input_ids,
          input_mask=input_mask, segment_ids=segment_ids, start_position=start_position,
          end_position=end_position, is_impossible=example.is_impossible))
      unique_id += 1
  return features if collect else unique_id - FIRST_UNIQUE_ID


# ----------------------------------------------------------------------------- TFRecords


def _int_feature(values):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


class FeatureWriter:
  """Writes InputFeatures as tf.train.Examples; the file appears under its name on close()."""

  def __init__(self, filename, is_training):
    self.filename = filename
    self.is_training = is_training
    self.num_features = 0
    utils.check_output_path(filename)
    utils.sweep_partials(filename)
    self._tmp = utils.partial_path(filename, str(id(self)))
    self._writer = tf.io.TFRecordWriter(self._tmp)

  def process_feature(self, feature):
    self.num_features += 1
    features = collections.OrderedDict()
    features["unique_ids"] = _int_feature([feature.unique_id])
    features["input_ids"] = _int_feature(feature.input_ids)
    features["input_mask"] = _int_feature(feature.input_mask)
    features["segment_ids"] = _int_feature(feature.segment_ids)
    if self.is_training:
      features["start_positions"] = _int_feature([feature.start_position])
      features["end_positions"] = _int_feature([feature.end_position])
      features["is_impossible"] = _int_feature([int(bool(feature.is_impossible))])
    example = tf.train.Example(features=tf.train.Features(feature=features))
    self._writer.write(example.SerializeToString())

  def close(self):
    self._writer.close()
    tf.io.gfile.rename(self._tmp, self.filename, overwrite=True)

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    if exc_type is None:
      self.close()
    else:
      self._writer.close()
      tf.io.gfile.remove(self._tmp)


def name_to_features(seq_length, is_training):
  """The parsing spec of the SQuAD TFRecords."""
  spec = {
      "unique_ids": tf.io.FixedLenFeature([], tf.int64),
      "input_ids": tf.io.FixedLenFeature([seq_length], tf.int64),
      "input_mask": tf.io.FixedLenFeature([seq_length], tf.int64),
      "segment_ids": tf.io.FixedLenFeature([seq_length], tf.int64),
  }
  if is_training:
    spec["start_positions"] = tf.io.FixedLenFeature([], tf.int64)
    spec["end_positions"] = tf.io.FixedLenFeature([], tf.int64)
  return spec


def decode_record(record, seq_length, is_training):
  """One serialized tf.train.Example -> dict of int32 tensors (TPUs want int32)."""
  example = tf.io.parse_single_example(record, name_to_features(seq_length, is_training))
  return {k: tf.cast(v, tf.int32) for k, v in example.items()}


def _pad_to_batch(batch, batch_size):
  """Pads a final short batch with zero rows (unique_ids 0: no feature has it) to a static shape."""
  def pad(t):
    n = batch_size - tf.shape(t)[0]
    padded = tf.pad(t, [[0, n]] + [[0, 0]] * (len(t.shape) - 1))
    return tf.ensure_shape(padded, [batch_size] + t.shape.as_list()[1:])
  return {k: pad(v) for k, v in batch.items()}


def create_dataset(input_file, seq_length, batch_size, is_training, input_context=None,
                   shuffle_buffer=100, seed=12345):
  """tf.data of feature dicts (int32 [B, S] / [B]) from SQuAD TFRecords (GR's input_fn).

  Training: the shared deterministic pipeline (seeded shuffle, buffer 100 as GR, whose examples
  are pre-shuffled when written; repeat; full batches), so a resumed run skips exactly the
  batches it has used. Prediction: file order, one pass, the last batch padded with
  unique_ids=0 rows to `batch_size` (static shapes for TPU / XLA; their outputs are ignored).
  `batch_size` is per input pipeline; `input_context` is a tf.distribute.InputContext.
  """
  files = utils.expand_globs(input_file, "input_file") if isinstance(input_file, str) else (
      list(input_file))
  if is_training:
    return inputs.tfrecord_dataset(
        files, lambda r: decode_record(r, seq_length, True), batch_size, True, input_context,
        seed=seed, shuffle_buffer=shuffle_buffer)
  d = tf.data.TFRecordDataset(files)
  if input_context and input_context.num_input_pipelines > 1:
    d = d.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
  d = d.map(lambda r: decode_record(r, seq_length, False), num_parallel_calls=tf.data.AUTOTUNE)
  d = d.batch(batch_size).map(lambda b: _pad_to_batch(b, batch_size))
  return d.prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------- predictions


def _get_best_indexes(logits, n_best_size):
  """Indexes of the n largest logits; ties keep the lower index first (as GR's stable sort)."""
  return np.argsort(-np.asarray(logits, dtype=np.float64), kind="stable")[:n_best_size].tolist()


def _compute_softmax(scores):
  if not scores:
    return []
  max_score = max(scores)
  exp_scores = [math.exp(s - max_score) for s in scores]
  total = sum(exp_scores)
  return [s / total for s in exp_scores]


def _strip_spaces(text):
  """Text without spaces, and for each of its characters the index in `text`."""
  ns_chars = []
  ns_to_s_map = {}
  for i, c in enumerate(text):
    if c == " ":
      continue
    ns_to_s_map[len(ns_chars)] = i
    ns_chars.append(c)
  return "".join(ns_chars), ns_to_s_map


def get_final_text(pred_text, orig_text, do_lower_case, verbose_logging=False,
                   basic_tokenizer=None):
  """Projects the normalised WordPiece answer `pred_text` back onto the original words.

  E.g. pred_text "steve smith", orig_text "Steve Smith's" -> "Steve Smith". The original is run
  through BasicTokenizer; if it matches the original character for character (ignoring
  spaces), the answer's characters map back one to one. When that fails, returns orig_text.
  """
  if basic_tokenizer is None:
    from official_bert import tokenization  # pylint: disable=import-outside-toplevel
    basic_tokenizer = tokenization.BasicTokenizer(do_lower_case=do_lower_case)
  tok_text = " ".join(basic_tokenizer.tokenize(orig_text))

  start_position = tok_text.find(pred_text)
  if start_position == -1:
    if verbose_logging:
      logging.info("Unable to find text: %r in %r", pred_text, orig_text)
    return orig_text
  end_position = start_position + len(pred_text) - 1

  orig_ns_text, orig_ns_to_s_map = _strip_spaces(orig_text)
  tok_ns_text, tok_ns_to_s_map = _strip_spaces(tok_text)
  if len(orig_ns_text) != len(tok_ns_text):
    if verbose_logging:
      logging.info("Length not equal after stripping spaces: %r vs %r", orig_ns_text,
                   tok_ns_text)
    return orig_text

  tok_s_to_ns_map = {s: ns for ns, s in tok_ns_to_s_map.items()}
  orig_start_position = orig_ns_to_s_map.get(tok_s_to_ns_map.get(start_position))
  if orig_start_position is None:
    if verbose_logging:
      logging.info("Couldn't map start position")
    return orig_text
  orig_end_position = orig_ns_to_s_map.get(tok_s_to_ns_map.get(end_position))
  if orig_end_position is None:
    if verbose_logging:
      logging.info("Couldn't map end position")
    return orig_text
  return orig_text[orig_start_position:orig_end_position + 1]


_PrelimPrediction = collections.namedtuple(
    "PrelimPrediction", ["feature_index", "start_index", "end_index", "start_logit",
                         "end_logit"])
_NbestPrediction = collections.namedtuple("NbestPrediction",
                                          ["text", "start_logit", "end_logit"])


def compute_predictions(all_examples, all_features, all_results, n_best_size,
                        max_answer_length, do_lower_case, version_2_with_negative=False,
                        null_score_diff_threshold=0.0, verbose_logging=False,
                        basic_tokenizer=None):
  """Best answer per question from the windows' logits (GR's `write_predictions`, no I/O).

  Args:
    all_examples: SquadExamples; all_features: their InputFeatures;
    all_results: RawResults (start/end logits [S] per feature unique_id).
    version_2_with_negative: also score "no answer" = min over windows of the [CLS] logits;
      predict "" when null score - best non-null score > null_score_diff_threshold.
    basic_tokenizer: for get_final_text; default tokenization.BasicTokenizer(do_lower_case).
  Returns:
    (predictions {qas_id: text}, nbest {qas_id: [{text, probability, start_logit,
    end_logit}]}, null score diffs {qas_id: float}, empty unless version_2_with_negative).
  """
  example_index_to_features = collections.defaultdict(list)
  for feature in all_features:
    example_index_to_features[feature.example_index].append(feature)
  unique_id_to_result = {result.unique_id: result for result in all_results}
  if basic_tokenizer is None:  # one BasicTokenizer for every get_final_text call
    from official_bert import tokenization  # pylint: disable=import-outside-toplevel
    basic_tokenizer = tokenization.BasicTokenizer(do_lower_case=do_lower_case)

  all_predictions = collections.OrderedDict()
  all_nbest_json = collections.OrderedDict()
  scores_diff_json = collections.OrderedDict()
  for example_index, example in enumerate(all_examples):
    features = example_index_to_features[example_index]
    prelim_predictions = []
    score_null = 1000000.0  # min over windows of the null ([CLS]) score
    min_null_feature_index = 0
    null_start_logit = null_end_logit = 0.0
    for feature_index, feature in enumerate(features):
      if feature.unique_id not in unique_id_to_result:
        raise ValueError(f"no model output for feature unique_id {feature.unique_id} of "
                         f"question {example.qas_id!r}")
      result = unique_id_to_result[feature.unique_id]
      start_logits = [float(x) for x in result.start_logits]
      end_logits = [float(x) for x in result.end_logits]
      if version_2_with_negative:
        feature_null_score = start_logits[0] + end_logits[0]
        if feature_null_score < score_null:
          score_null = feature_null_score
          min_null_feature_index = feature_index
          null_start_logit, null_end_logit = start_logits[0], end_logits[0]
      for start_index in _get_best_indexes(start_logits, n_best_size):
        for end_index in _get_best_indexes(end_logits, n_best_size):
          # Drop spans outside the document part, in a window that is not the start
          # token's max-context window, reversed, or too long.
          if start_index >= len(feature.tokens) or end_index >= len(feature.tokens):
            continue
          if (start_index not in feature.token_to_orig_map
              or end_index not in feature.token_to_orig_map):
            continue
          if not feature.token_is_max_context.get(start_index, False):
            continue
          if end_index < start_index or end_index - start_index + 1 > max_answer_length:
            continue
          prelim_predictions.append(_PrelimPrediction(
              feature_index, start_index, end_index, start_logits[start_index],
              end_logits[end_index]))
    if version_2_with_negative:
      prelim_predictions.append(_PrelimPrediction(
          min_null_feature_index, 0, 0, null_start_logit, null_end_logit))
    prelim_predictions.sort(key=lambda x: x.start_logit + x.end_logit, reverse=True)

    seen_predictions = set()
    nbest = []
    for pred in prelim_predictions:
      if len(nbest) >= n_best_size:
        break
      feature = features[pred.feature_index]
      if pred.start_index > 0:  # a span; index 0 is the null answer
        tok_tokens = feature.tokens[pred.start_index:pred.end_index + 1]
        orig_doc_start = feature.token_to_orig_map[pred.start_index]
        orig_doc_end = feature.token_to_orig_map[pred.end_index]
        orig_text = " ".join(example.doc_tokens[orig_doc_start:orig_doc_end + 1])
        # Undo WordPiece: join "##" pieces, normalise whitespace.
        tok_text = " ".join(tok_tokens).replace(" ##", "").replace("##", "")
        tok_text = " ".join(tok_text.strip().split())
        final_text = get_final_text(tok_text, orig_text, do_lower_case, verbose_logging,
                                    basic_tokenizer)
        if final_text in seen_predictions:
          continue
      else:
        final_text = ""
      seen_predictions.add(final_text)
      nbest.append(_NbestPrediction(final_text, pred.start_logit, pred.end_logit))

    if version_2_with_negative and "" not in seen_predictions:
      nbest.append(_NbestPrediction("", null_start_logit, null_end_logit))
    if not nbest:  # no valid span at all (rare): a placeholder, as GR
      nbest.append(_NbestPrediction("empty", 0.0, 0.0))

    probs = _compute_softmax([e.start_logit + e.end_logit for e in nbest])
    all_nbest_json[example.qas_id] = [
        collections.OrderedDict([("text", e.text), ("probability", p),
                                 ("start_logit", e.start_logit), ("end_logit", e.end_logit)])
        for e, p in zip(nbest, probs)]

    if not version_2_with_negative:
      all_predictions[example.qas_id] = nbest[0].text
    else:
      best_non_null_entry = next((e for e in nbest if e.text), None)
      if best_non_null_entry is None:
        # Only the null answer survived (GR would crash here): predict "" with a large diff.
        scores_diff_json[example.qas_id] = 1000000.0
        all_predictions[example.qas_id] = ""
        continue
      score_diff = score_null - best_non_null_entry.start_logit - best_non_null_entry.end_logit
      scores_diff_json[example.qas_id] = score_diff
      all_predictions[example.qas_id] = (
          "" if score_diff > null_score_diff_threshold else best_non_null_entry.text)
  return all_predictions, all_nbest_json, scores_diff_json


def write_json(obj, path):
  """Writes `obj` as indented JSON, atomically (GR's layout: indent 4, trailing newline)."""
  with utils.atomic_open(path, "w") as f:
    f.write(json.dumps(obj, indent=4) + "\n")


def write_predictions(all_examples, all_features, all_results, n_best_size, max_answer_length,
                      do_lower_case, output_prediction_file, output_nbest_file,
                      output_null_log_odds_file, version_2_with_negative=False,
                      null_score_diff_threshold=0.0, verbose_logging=False,
                      basic_tokenizer=None):
  """compute_predictions, then writes predictions.json, nbest_predictions.json and (v2.0)
  null_odds.json. Returns the three dicts."""
  logging.info("Writing predictions to: %s", output_prediction_file)
  logging.info("Writing nbest to: %s", output_nbest_file)
  outputs = compute_predictions(all_examples, all_features, all_results, n_best_size,
                                max_answer_length, do_lower_case, version_2_with_negative,
                                null_score_diff_threshold, verbose_logging, basic_tokenizer)
  all_predictions, all_nbest_json, scores_diff_json = outputs
  write_json(all_predictions, output_prediction_file)
  write_json(all_nbest_json, output_nbest_file)
  if version_2_with_negative:
    write_json(scores_diff_json, output_null_log_odds_file)
  return outputs
