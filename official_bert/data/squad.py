"""SQuAD v1.1 / v2.0 for BERT: JSON -> examples -> windowed features -> TFRecords.

Follows GR's `run_squad.py` (the contract): whitespace words with char-to-word offsets, answers
kept only when their text can be recovered, sliding windows of `doc_stride` over the WordPiece
document with the "max context" rule. The way back (start/end logits -> n-best spans ->
predictions.json) is official_bert.tasks.span_labeling. This module owns the SQuAD TFRecord format
(GR's feature names: unique_ids, input_ids, input_mask, segment_ids, start_positions,
end_positions, is_impossible).

Legend: S = max_seq_length, B = batch size.
"""

import collections
import dataclasses
import json
from typing import Dict, List, Optional

from absl import logging
import tensorflow as tf

from official_bert import errors
from official_bert import utils
from official_bert.data import records

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


class FeatureWriter:
  """Writes InputFeatures as tf.train.Examples; the file appears under its name on close()."""

  def __init__(self, filename, is_training):
    self.filename = filename
    self.is_training = is_training
    self.num_features = 0
    utils.check_output_path(filename)
    utils.sweep_partials([filename])
    self._tmp = utils.partial_path(filename)
    self._writer = tf.io.TFRecordWriter(self._tmp)

  def process_feature(self, feature):
    self.num_features += 1
    features = {"unique_ids": records.int_feature([feature.unique_id])}
    for key in ("input_ids", "input_mask", "segment_ids"):
      features[key] = records.int_feature(getattr(feature, key))
    if self.is_training:
      features["start_positions"] = records.int_feature([feature.start_position])
      features["end_positions"] = records.int_feature([feature.end_position])
      features["is_impossible"] = records.int_feature([int(bool(feature.is_impossible))])
    self._writer.write(records.serialize(features))

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
  """The parsing spec of the SQuAD TFRecords (training ones add the answer positions)."""
  return records.int_spec(("input_ids", "input_mask", "segment_ids"), seq_length,
                          ("unique_ids",) + (("start_positions", "end_positions") if is_training
                                             else ()))


def decode_record(record, seq_length, is_training):
  """One serialized tf.train.Example -> dict of int32 tensors (TPUs want int32)."""
  return records.decode(record, name_to_features(seq_length, is_training))
