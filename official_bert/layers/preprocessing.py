"""In-graph BERT tokenization: strings -> input_ids / input_mask / segment_ids, GR-identical.

For tf.data pipelines and SavedModel serving. Basic tokenization is rebuilt from tf.strings ops with
every character class generated from this Python's `unicodedata` (so it agrees with GR's
`tokenization.py` run under the same Python, not with the Unicode tables inside TF's RE2/ICU);
WordPiece is tensorflow-text's FastWordpieceTokenizer. Why not tf_text's (Fast)BertTokenizer: its
lower-casing is NFKC case folding (maps "ﬁ"->"fi", fullwidth->ASCII, drops ZWJ/soft hyphen, no
Greek final sigma), and its cleaning, whitespace and punctuation sets are not GR's.

Steps (B = batch, W = words, T = wordpieces, S = seq_length):
  1. drop bytes that are not utf-8 (GR decodes with errors="ignore");
  2. delete NUL, U+FFFD, Cc, Cf (not \\t \\n \\r); map whitespace (and U+2028/9, which GR's
     str.split() splits on) to " ";
  3. pad CJK ideographs with spaces;
  4. if do_lower_case: rewrite a word-final capital sigma to "ς" (str.lower()'s Final_Sigma rule,
     with cased / case-ignorable sets measured from str.lower() itself), then map each character
     c to strip_Mn(NFD(c.lower())) through a table;
  5. pad punctuation with spaces, split on " ", words over 200 characters -> [UNK];
  6. FastWordpieceTokenizer on each word; then truncation (GR's _truncate_seq_pair) and packing.

Known in-graph difference, do_lower_case only: step 4 maps character by character, so NFD's
canonical reordering is lost where two *spacing* combining marks (Mc with a non-zero combining
class, e.g. U+1D165..U+1D172 musical symbols, U+302E/F, some viramas) stand out of canonical order
in one run of marks; `FullTokenizer` (Python/batch path) is exact there.
"""

import functools
import sys
import unicodedata

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from official_bert import tokenization

_MAX_CP = sys.maxunicode
_CAPITAL_SIGMA = "\u03a3"


def _assigned_codepoints():
  """Every code point that can appear in valid utf-8 and is assigned (not Cn, Cs)."""
  return [cp for cp in range(_MAX_CP + 1)
          if not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)) != "Cn"]


def _char_class(cps, negate=False):
  """Sorted code points -> an RE2 character class."""
  parts = []
  cps = sorted(cps)
  i = 0
  while i < len(cps):
    j = i
    while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
      j += 1
    parts.append(f"\\x{{{cps[i]:X}}}" if i == j else f"\\x{{{cps[i]:X}}}-\\x{{{cps[j]:X}}}")
    i = j + 1
  return "[" + ("^" if negate else "") + "".join(parts) + "]"


@functools.lru_cache(maxsize=None)
def _tables():
  """GR's character classes as RE2 classes, and the lower-case/NFD/strip-accents table."""
  assigned = _assigned_codepoints()
  deleted, spaces, cjk, punct = [], [], [], []
  for cp in assigned:
    c = chr(cp)
    if cp == 0 or cp == 0xFFFD or tokenization._is_control(c):  # pylint: disable=protected-access
      deleted.append(cp)
    elif tokenization._is_whitespace(c) or c.isspace():  # pylint: disable=protected-access
      if cp != 0x20:  # already a space
        spaces.append(cp)
    elif tokenization._is_chinese_char(cp):  # pylint: disable=protected-access
      cjk.append(cp)
    if tokenization._is_punctuation(c):  # pylint: disable=protected-access
      punct.append(cp)

  # str.lower()'s Final_Sigma context, measured on str.lower() itself:
  #   "XΣ" ends in ς  <=> X is cased and not case-ignorable          (may start the context)
  #   "AXΣ" ends in ς <=> X is case-ignorable or cased
  #   "AΣX" has ς     <=> X is case-ignorable or not cased
  sigma_start, ignorable, neither = [], [], []
  for cp in assigned:
    c = chr(cp)
    t1 = (c + _CAPITAL_SIGMA).lower()[-1] == "ς"
    t2 = ("A" + c + _CAPITAL_SIGMA).lower()[-1] == "ς"
    t3 = ("A" + _CAPITAL_SIGMA + c).lower()[1] == "ς"
    if t1:
      sigma_start.append(cp)
    if t2 and t3:
      ignorable.append(cp)
    if not t2:
      neither.append(cp)

  # Per-character lower-casing table: c -> strip_Mn(NFD(c.lower())), where that differs from c.
  keys, values, splits = [], [], [0]
  deleted_set = set(deleted)
  for cp in assigned:
    c = chr(cp)
    if cp in deleted_set or c.isspace():
      continue
    out = tokenization._strip_accents(c.lower())  # pylint: disable=protected-access
    out = "".join(" " if o.isspace() else o for o in out)  # GR's last split cuts there too
    if out != c:
      keys.append(cp)
      values.extend(ord(o) for o in out)
      splits.append(len(values))
  return dict(
      deleted=_char_class(deleted), spaces=_char_class(spaces), cjk=_char_class(cjk),
      punct=_char_class(punct), sigma_start=_char_class(sigma_start),
      ignorable=_char_class(ignorable), neither=_char_class(neither),
      lower_keys=np.array(keys, np.int32), lower_values=np.array(values, np.int32),
      lower_splits=np.array(splits, np.int32))


def _map_chars(text, keys, values, splits):
  """Replaces each code point keys[i] by values[splits[i]:splits[i+1]]; text [B] -> [B]."""
  cps = tf.strings.unicode_decode(text, "UTF-8")  # [B, (C)]
  flat = cps.flat_values  # [N]
  num_keys = tf.shape(keys)[0]
  idx = tf.minimum(tf.searchsorted(keys, flat, side="left"), num_keys - 1)
  found = tf.equal(tf.gather(keys, idx), flat)
  rep_len = splits[1:] - splits[:-1]
  out_len = tf.where(found, tf.gather(rep_len, idx), 1)  # [N]
  src = tf.repeat(tf.range(tf.shape(flat)[0]), out_len)  # [M] source character of each output
  starts = tf.cumsum(out_len, exclusive=True)
  offset = tf.range(tf.shape(src)[0]) - tf.gather(starts, src)
  found_src = tf.gather(found, src)
  rep_pos = tf.where(found_src, tf.gather(splits, tf.gather(idx, src)) + offset, 0)
  out = tf.where(found_src, tf.gather(values, rep_pos), tf.gather(flat, src))  # [M]
  row_lengths = tf.reduce_sum(cps.with_flat_values(out_len), axis=1)
  return tf.strings.unicode_encode(tf.RaggedTensor.from_row_lengths(out, row_lengths), "UTF-8")


def truncate_seq_pair_lengths(len_a, len_b, max_length):
  """Lengths GR's _truncate_seq_pair leaves: pop from the longer one, from b on ties. [B] -> [B]."""
  len_a = tf.cast(len_a, tf.int64)
  len_b = tf.cast(len_b, tf.int64)
  max_length = tf.cast(max_length, tf.int64)
  total = len_a + len_b
  half_up = (max_length + 1) // 2
  new_a = tf.minimum(len_a, tf.maximum(half_up, max_length - len_b))
  new_a = tf.where(total <= max_length, len_a, new_a)
  new_b = tf.where(total <= max_length, len_b, max_length - new_a)
  return new_a, new_b


def _keep_first(ragged, lengths):
  """Row i of `ragged` cut to lengths[i] items."""
  keep = tf.ragged.range(ragged.row_lengths()) < tf.expand_dims(lengths, 1)
  return tf.ragged.boolean_mask(ragged, keep)


class _StringLayer(keras.layers.Layer):
  """A layer without weights that takes strings (and may return ragged tensors)."""

  def __init__(self, **kwargs):
    kwargs.setdefault("trainable", False)
    super().__init__(**kwargs)
    # Keep Keras from converting or checking the arguments.
    self._convert_input_args = False
    self._allow_non_tensor_positional_args = True


@keras.saving.register_keras_serializable(package="official_bert")
class BertTokenizerLayer(_StringLayer):
  """Strings [B] -> wordpiece ids [B, (T)] (a RaggedTensor), identical to GR's FullTokenizer."""

  def __init__(self, vocab_file, do_lower_case=True, max_input_chars_per_word=200, **kwargs):
    super().__init__(**kwargs)
    self.vocab_file = vocab_file
    self.do_lower_case = do_lower_case
    self.max_input_chars_per_word = max_input_chars_per_word
    self.vocab = tokenization.load_vocab(vocab_file)
    tokenization.check_vocab(self.vocab, vocab_file, tokenization.FINE_TUNING_TOKENS)
    self.cls_id = self.vocab["[CLS]"]
    self.sep_id = self.vocab["[SEP]"]
    self.unk_id = self.vocab["[UNK]"]
    t = _tables()
    self._deleted, self._spaces, self._cjk, self._punct = (
        t["deleted"], t["spaces"], t["cjk"], t["punct"])
    # (start, ignorables)Σ(ignorables)(end or a character neither cased nor ignorable)
    self._final_sigma = (f"({t['sigma_start']}{t['ignorable']}*)\\x{{3A3}}"
                         f"({t['ignorable']}*)({t['neither']}|$)")
    self._lower_tables = (t["lower_keys"], t["lower_values"], t["lower_splits"])
    self._wordpiece = tf_text.FastWordpieceTokenizer(
        vocab=list(self.vocab), suffix_indicator="##",
        max_bytes_per_word=4 * max_input_chars_per_word + 4, token_out_type=tf.int32,
        unknown_token="[UNK]", no_pretokenization=True, support_detokenization=False)

  def _clean_and_split(self, text):
    """text [B] -> GR's whitespace tokens [B, (W)] (after cleaning and CJK padding)."""
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="ignore")
    text = tf.strings.regex_replace(text, self._deleted, "")
    text = tf.strings.regex_replace(text, self._spaces, " ")
    text = tf.strings.regex_replace(text, f"({self._cjk})", r" \1 ")
    return tf.strings.split(text)

  def _split_words(self, words):
    """Distinct whitespace tokens [U] -> basic tokens [U, (w)]: lower-case, strip, split punct."""
    if self.do_lower_case:
      # Only non-ASCII words need the Unicode tables; ASCII ones just go through ASCII lower().
      non_ascii = 1 - tf.cast(tf.strings.regex_full_match(words, "[\\x00-\\x7f]*"), tf.int32)
      positions = tf.dynamic_partition(tf.range(tf.shape(words)[0]), non_ascii, 2)
      ascii_words, other_words = tf.dynamic_partition(words, non_ascii, 2)
      other_words = tf.strings.regex_replace(other_words, self._final_sigma, "\\1\u03c2\\2\\3")
      other_words = _map_chars(other_words, *(tf.constant(a) for a in self._lower_tables))
      words = tf.dynamic_stitch(positions, [tf.strings.lower(ascii_words), other_words])
    words = tf.strings.regex_replace(words, f"({self._punct})", r" \1 ")
    return tf.strings.split(words)

  def basic_tokenize(self, text):
    """text [B] -> basic tokens [B, (W)]: GR's BasicTokenizer."""
    words = self._clean_and_split(text)  # [B, (W)]
    unique, index = tf.unique(words.flat_values)
    pieces = tf.gather(self._split_words(unique), index)  # [N, (w)]
    return words.with_flat_values(pieces).merge_dims(1, 2)

  def call(self, text):
    text = tf.convert_to_tensor(text, dtype=tf.string)
    words = self._clean_and_split(text)  # [B, (W)]
    # Each distinct word is tokenized once per batch (natural text repeats words a lot).
    unique, index = tf.unique(words.flat_values)  # [U], [N]
    pieces = self._split_words(unique)  # [U, (w)]
    too_long = tf.strings.length(pieces, unit="UTF8_CHAR") > self.max_input_chars_per_word
    pieces = pieces.with_flat_values(tf.where(too_long.flat_values, "[UNK]", pieces.flat_values))
    ids = self._wordpiece.tokenize(pieces).merge_dims(1, 2)  # [U, (t)]
    return words.with_flat_values(tf.gather(ids, index)).merge_dims(1, 2)  # [B, (T)]

  def get_config(self):
    config = super().get_config()
    config.update(vocab_file=self.vocab_file, do_lower_case=self.do_lower_case,
                  max_input_chars_per_word=self.max_input_chars_per_word)
    return config


@keras.saving.register_keras_serializable(package="official_bert")
class BertPreprocessor(_StringLayer):
  """One or two string tensors [B] -> {"input_ids", "input_mask", "segment_ids"}, each [B, S] int32.

  As GR's run_classifier.convert_single_example: "[CLS] a [SEP]" or "[CLS] a [SEP] b [SEP]", the
  pair cut to S - 3 wordpieces by _truncate_seq_pair (a single text, or a pair whose b has no
  wordpieces, to S - 2), then zero-padded to S.
  """

  def __init__(self, vocab_file, do_lower_case=True, seq_length=128, **kwargs):
    super().__init__(**kwargs)
    self.vocab_file = vocab_file
    self.do_lower_case = do_lower_case
    self.seq_length = seq_length
    self.tokenizer = BertTokenizerLayer(vocab_file, do_lower_case, name="tokenizer")

  def call(self, inputs):
    if isinstance(inputs, (list, tuple)):
      texts = list(inputs)
    else:
      texts = [inputs]
    if not 1 <= len(texts) <= 2:
      raise ValueError(f"BertPreprocessor takes 1 or 2 string tensors, got {len(texts)}")
    segments = [self.tokenizer(t) for t in texts]  # each [B, (T)]
    tokens_a = segments[0]
    batch = tokens_a.nrows()
    if len(segments) == 1:
      tokens_b = tf.RaggedTensor.from_row_lengths(
          tf.zeros([0], tokens_a.dtype), tf.zeros([batch], tf.int64))
    else:
      tokens_b = segments[1]
    len_a, len_b = tokens_a.row_lengths(), tokens_b.row_lengths()
    # GR treats a text_b without wordpieces as no text_b: one segment, cut to S - 2, one [SEP].
    has_b = len_b > 0
    pair_a, pair_b = truncate_seq_pair_lengths(len_a, len_b, self.seq_length - 3)
    len_a = tf.where(has_b, pair_a, tf.minimum(len_a, self.seq_length - 2))
    tokens_a = _keep_first(tokens_a, len_a)
    tokens_b = _keep_first(tokens_b, tf.where(has_b, pair_b, 0))

    def constant_rows(value, row_lengths):  # [B, (row_lengths)] filled with value
      return tf.RaggedTensor.from_row_lengths(
          tf.fill([tf.reduce_sum(row_lengths)], tf.cast(value, tokens_a.dtype)), row_lengths)

    ones = tf.ones([batch], tf.int64)
    sep_b = tf.cast(has_b, tf.int64)
    input_ids = tf.concat([
        constant_rows(self.tokenizer.cls_id, ones), tokens_a,
        constant_rows(self.tokenizer.sep_id, ones), tokens_b,
        constant_rows(self.tokenizer.sep_id, sep_b)], axis=1)  # [B, (S)]
    segment_ids = tf.concat([
        constant_rows(0, len_a + 2),
        constant_rows(1, tokens_b.row_lengths() + sep_b)], axis=1)  # [B, (S)]
    input_ids, input_mask = tf_text.pad_model_inputs(input_ids, self.seq_length)
    segment_ids, _ = tf_text.pad_model_inputs(segment_ids, self.seq_length)
    return {"input_ids": tf.cast(input_ids, tf.int32),
            "input_mask": tf.cast(input_mask, tf.int32),
            "segment_ids": tf.cast(segment_ids, tf.int32)}

  def get_config(self):
    config = super().get_config()
    config.update(vocab_file=self.vocab_file, do_lower_case=self.do_lower_case,
                  seq_length=self.seq_length)
    return config
