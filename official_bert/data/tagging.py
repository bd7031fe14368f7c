"""CoNLL-format tagging data (NER): file -> examples -> first-subword features -> TFRecords.

The BERT paper's NER recipe: each word is WordPiece-tokenized, its FIRST sub-token carries the
word's label, every other sub-token (and [CLS] / [SEP] / padding) is masked out of the loss and of
prediction. A sentence (or, with `document_context`, a whole document) longer than the window is
split into overlapping windows, never truncated; each word is labelled in exactly one window, the
one where it has the most context on both sides (GR's `_check_is_max_context` rule from SQuAD), so
mapping predictions back (official_bert.tasks.tagging) gives every input word exactly one tag.

Tag schemes: CoNLL-2003 files are IOB1 (`I-X` opens an entity, `B-X` only separates two adjacent
entities of one type). We train on BIO (IOB2: every entity opens with `B-X`) and write predictions
back in the scheme of the file. Entity boundaries are the same in both (conlleval's chunk rules).

Sequence dimensions: S = max_seq_length; L = number of labels.
"""

import collections
import dataclasses

import numpy as np
import tensorflow as tf

from official_bert import errors
from official_bert import utils
from official_bert.data import records

SCHEMES = ("iob1", "bio")
DOCSTART = "-DOCSTART-"


@dataclasses.dataclass
class TaggingExample:
  """One sentence of a CoNLL file."""
  guid: str
  words: list            # [W] str
  labels: list           # [W] str in the file's scheme, or None when the file has no tag column
  line_numbers: list     # [W] 1-based line of each word in `source`
  source: str            # the file it came from
  document_index: int    # which -DOCSTART- document of `source` (0 if the file has none)
  starts_document: bool = False  # a -DOCSTART- line came right before it


@dataclasses.dataclass
class InputFeatures:
  """One window of sub-tokens, [CLS] window [SEP], padded to S."""
  unique_id: int
  input_ids: list        # [S] int
  input_mask: list       # [S] 1 for real tokens
  segment_ids: list      # [S] all 0: one segment
  label_ids: list        # [S] label id at labelled positions, 0 elsewhere
  label_weights: list    # [S] 1 where this window owns the word's prediction, 0 elsewhere
  # position in the window -> (example_index, word_index) of the word labelled there.
  word_positions: dict = dataclasses.field(default_factory=dict)
  tokens: list = None    # [<=S] str, for logging


# ------------------------------------------------------------------------------------------------
# Reading CoNLL files

def _is_tag(tag):
  return tag == "O" or (len(tag) > 2 and tag[:2] in ("B-", "I-"))


def read_conll(path, scheme="iob1", has_labels=None):
  """Reads a CoNLL file: `word [columns...] tag` per line, blank line between sentences.

  Args:
    path: the file (local or gs://).
    scheme: "iob1" or "bio", the tagging scheme of the file's last column.
    has_labels: whether the last column is a tag. None: yes if lines have >= 2 columns.

  Returns:
    A list of TaggingExample, in file order.

  Raises:
    ValueError naming the file and line for a line whose column count differs from the file's
    first token line, or a tag that is neither `O` nor `B-TYPE` / `I-TYPE`.
  """
  if scheme not in SCHEMES:
    raise ValueError(f"label scheme {scheme!r} is not one of {SCHEMES}")
  examples = []
  num_columns = first_line = None
  doc_index = -1
  words, labels, lines = [], [], []
  starts_document = False

  def flush():
    nonlocal words, labels, lines, starts_document
    if words:
      examples.append(TaggingExample(
          guid=f"{path}-{len(examples)}", words=words, labels=labels if has_labels else None,
          line_numbers=lines, source=path, document_index=max(doc_index, 0),
          starts_document=starts_document))
      starts_document = False
    words, labels, lines = [], [], []

  for line_number, line in utils.read_lines(path, "CoNLL file",
                                            "give a CoNLL file: `word ... tag` per line"):
    columns = line.split()
    if not columns:
      flush()
      continue
    if columns[0] == DOCSTART:
      flush()
      doc_index += 1
      starts_document = True
      continue
    if num_columns is None:
      num_columns, first_line = len(columns), line_number
      if has_labels is None:
        has_labels = num_columns >= 2
      if has_labels and num_columns < 2:
        raise errors.UserError(
            f"{path}:{line_number}: expected a word and a tag column, found only "
            f"{line.strip()!r}")
    elif len(columns) != num_columns:
      raise errors.UserError(
          f"{path}:{line_number}: found {len(columns)} column(s), but line {first_line} has "
          f"{num_columns}; every token line needs `word ... tag` with the same columns, and "
          f"sentences are separated by blank lines: {line.rstrip()!r}")
    if has_labels:
      tag = columns[-1]
      if not _is_tag(tag):
        raise errors.UserError(
            f"{path}:{line_number}: tag {tag!r} is not 'O', 'B-TYPE' or 'I-TYPE' "
            f"(--label_scheme={scheme}); is the tag the last column?")
      labels.append(tag)
    words.append(columns[0])
    lines.append(line_number)
  flush()
  if not examples:
    raise errors.UserError("no sentences", path, "the file is empty; give a CoNLL file: "
                           "`word ... tag` per line, a blank line between sentences")
  return examples


# ------------------------------------------------------------------------------------------------
# Tag schemes

def iob1_to_bio(tags):
  """IOB1 -> BIO: an `I-X` that opens an entity (after `O` or another type) becomes `B-X`."""
  out, prev = [], "O"
  for tag in tags:
    if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
      out.append("B-" + tag[2:])
    else:
      out.append(tag)
    prev = tag
  return out


def bio_to_iob1(tags):
  """BIO -> IOB1: `B-X` stays only right after an entity of the same type X, else becomes `I-X`."""
  out, prev = [], "O"
  for tag in tags:
    if tag.startswith("B-") and (prev == "O" or prev[2:] != tag[2:]):
      out.append("I-" + tag[2:])
    else:
      out.append(tag)
    prev = tag
  return out


def to_bio(tags, scheme):
  return iob1_to_bio(tags) if scheme == "iob1" else list(tags)


def from_bio(tags, scheme):
  return bio_to_iob1(tags) if scheme == "iob1" else list(tags)


def get_labels(examples):
  """The label set of the training data, in BIO: `O`, then `B-T`, `I-T` for each type T, sorted."""
  types = set()
  for ex in examples:
    if ex.labels is None:
      raise ValueError(f"{ex.source}: training data needs a tag column")
    types.update(tag[2:] for tag in ex.labels if tag != "O")
  if not types:
    raise ValueError("the training data has no entity tags (only 'O')")
  return ["O"] + [f"{p}-{t}" for t in sorted(types) for p in ("B", "I")]


def write_label_list(path, label_list):
  with utils.atomic_open(path, "w") as f:
    f.write("".join(label + "\n" for label in label_list))


def read_label_list(path):
  with tf.io.gfile.GFile(path, "r") as f:
    labels = [line.strip() for line in f if line.strip()]
  if not labels or labels[0] != "O" or not all(_is_tag(t) for t in labels):
    raise ValueError(f"{path}: not a label list (one tag a line, 'O' first)")
  return labels


# ------------------------------------------------------------------------------------------------
# Examples -> features

def _word_pieces(tokenizer, word, cache):
  pieces = cache.get(word)
  if pieces is None:
    # A word the tokenizer drops entirely (e.g. only control characters) still needs a position.
    pieces = tokenizer.tokenize(word) or ["[UNK]"]
    cache[word] = pieces
  return pieces


def _windows(num_tokens, window_length, doc_stride):
  """(start, length) spans over `num_tokens` sub-tokens, stepping `doc_stride`, covering all."""
  spans, start = [], 0
  while True:
    length = min(num_tokens - start, window_length)
    spans.append((start, length))
    if start + length >= num_tokens:
      return spans
    start += min(length, doc_stride)


def _best_window(spans, position):
  """The span where `position` has the most context: max of min(left, right) + 0.01 * length."""
  best, best_score = None, None
  for i, (start, length) in enumerate(spans):
    end = start + length - 1
    if start <= position <= end:
      score = min(position - start, end - position) + 0.01 * length
      if best_score is None or score > best_score:
        best, best_score = i, score
  return best


def _units(examples, document_context):
  """Groups example indices into the sequences that get windowed: sentences, or documents."""
  if not document_context:
    return [[i] for i in range(len(examples))]
  units = []
  for i, ex in enumerate(examples):
    if units and (examples[units[-1][-1]].source, examples[units[-1][-1]].document_index) == (
        ex.source, ex.document_index):
      units[-1].append(i)
    else:
      units.append([i])
  return units


def convert_examples_to_features(examples, label_list, max_seq_length, tokenizer, scheme="iob1",
                                 doc_stride=None, document_context=False):
  """Tokenizes, aligns labels to first sub-tokens and windows; every word is labelled once.

  Args:
    examples: TaggingExample list (labels in `scheme`, or None for unlabelled predict data).
    label_list: BIO labels, `O` first (see `get_labels`).
    max_seq_length: S, including [CLS] and [SEP].
    tokenizer: a FullTokenizer-like object (`tokenize`, `convert_tokens_to_ids`).
    scheme: the examples' tag scheme; labels are converted to BIO.
    doc_stride: step between windows of one long sequence, in sub-tokens. None: half a window.
    document_context: window whole documents, so words see neighbouring sentences as context.

  Returns:
    A list of InputFeatures.

  Raises:
    ValueError naming file and line for a tag whose label is not in `label_list`.
  """
  if max_seq_length < 3:
    raise ValueError(f"max_seq_length={max_seq_length}: needs room for [CLS], a token and [SEP]")
  window_length = max_seq_length - 2
  doc_stride = doc_stride or max(1, window_length // 2)
  label_map = {label: i for i, label in enumerate(label_list)}
  cache = {}
  features = []
  for unit in _units(examples, document_context):
    tokens, owners = [], []  # owners[p] = (example_index, word_index) at a first sub-token, else None
    for ex_index in unit:
      for word_index, word in enumerate(examples[ex_index].words):
        pieces = _word_pieces(tokenizer, word, cache)
        tokens.extend(pieces)
        owners.append((ex_index, word_index))
        owners.extend([None] * (len(pieces) - 1))
    label_ids_of = {}
    for ex_index in unit:
      ex = examples[ex_index]
      if ex.labels is None:
        continue
      for word_index, tag in enumerate(to_bio(ex.labels, scheme)):
        if tag not in label_map:
          raise ValueError(
              f"{ex.source}:{ex.line_numbers[word_index]}: tag {ex.labels[word_index]!r} is not "
              f"in the training label set {label_list}; use data with the same entity types "
              f"and the same --label_scheme as training")
        label_ids_of[(ex_index, word_index)] = label_map[tag]

    spans = _windows(len(tokens), window_length, doc_stride)
    owned = collections.defaultdict(list)  # span index -> first sub-token positions it labels
    for p, owner in enumerate(owners):
      if owner is not None:
        owned[_best_window(spans, p)].append(p)
    for span_index, (start, length) in enumerate(spans):
      window_tokens = ["[CLS]"] + tokens[start:start + length] + ["[SEP]"]
      input_ids = tokenizer.convert_tokens_to_ids(window_tokens)
      label_ids = [0] * max_seq_length
      label_weights = [0] * max_seq_length
      word_positions = {}
      for p in owned[span_index]:
        position = p - start + 1  # +1 for [CLS]
        word_positions[position] = owners[p]
        label_ids[position] = label_ids_of.get(owners[p], 0)
        label_weights[position] = 1
      pad = max_seq_length - len(input_ids)
      features.append(InputFeatures(
          unique_id=len(features), input_ids=input_ids + [0] * pad,
          input_mask=[1] * len(input_ids) + [0] * pad, segment_ids=[0] * max_seq_length,
          label_ids=label_ids, label_weights=label_weights, word_positions=word_positions,
          tokens=window_tokens))
  return features


# ------------------------------------------------------------------------------------------------
# Features <-> TFRecord / tf.data

FEATURE_KEYS = ("input_ids", "input_mask", "segment_ids", "label_ids", "label_weights")


def write_features(features, path):
  """Writes features to one TFRecord file (atomically), GR's `file_based_convert_...` layout."""
  with utils.atomic_path(path) as tmp:
    with tf.io.TFRecordWriter(tmp) as writer:
      for feature in features:
        d = {k: records.int_feature(getattr(feature, k)) for k in FEATURE_KEYS}
        d["unique_id"] = records.int_feature([feature.unique_id])
        writer.write(records.serialize(d))


def name_to_features(seq_length):
  return records.int_spec(FEATURE_KEYS, seq_length, ("unique_id",))


def decode_record(seq_length):
  """serialized tf.Example [] -> dict of int32 tensors ([S] and unique_id [])."""
  spec = name_to_features(seq_length)
  return lambda record: records.decode(record, spec)


def features_to_arrays(features):
  """In-memory alternative to TFRecords: dict of int32 numpy arrays, [N, S] and unique_id [N]."""
  d = {k: np.asarray([getattr(f, k) for f in features], np.int32) for k in FEATURE_KEYS}
  d["unique_id"] = np.asarray([f.unique_id for f in features], np.int32)
  return d
