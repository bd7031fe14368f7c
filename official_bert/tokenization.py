"""WordPiece tokenization with GR's API and GR's exact output, plus a fast batch path.

`FullTokenizer`, `BasicTokenizer`, `WordpieceTokenizer` and the module functions keep the names and
behaviour of google-research/bert `tokenization.py` (1.0.4, incl. `preserve_unused_tokens`).

GR's pipeline is: decode utf-8 (dropping bad bytes) -> drop NUL, U+FFFD, Cc and Cf (but \\t \\n \\r)
and map whitespace to " " -> pad CJK ideographs with spaces -> split on whitespace -> per word:
`str.lower()` then NFD and drop Mn (only with do_lower_case) -> split off punctuation -> greedy
longest-match WordPiece (words over 200 characters become [UNK]).

The fast path (`tokenize`, `tokenize_batch`, `convert_batch_to_ids`) runs the same steps on the
"\\n"-joined text of a whole batch with C-speed string operations (see
`FullTokenizer._joined_basic_tokens` for why that is exact; only runs of non-ASCII characters go
through per-character tables), then maps each basic token through a cache that starts with the vocab
and runs the WordPiece search once per new out-of-vocab token. `tokenize_uncached` is the plain
per-character pipeline, the reference the fast path is tested against (besides GR's own code).
The in-graph path is `official_bert.layers.preprocessing`.
"""

import collections
import itertools
import os
import re
import unicodedata

from absl import flags
from absl import logging

from official_bert import errors

# GR's tokenizer demands nothing of a vocab; the jobs check what they use. Fine-tuning and feature
# extraction build [CLS] ... [SEP] sequences (and WordPiece falls back to [UNK]); pre-training also
# masks with [MASK].
FINE_TUNING_TOKENS = ("[UNK]", "[CLS]", "[SEP]")
PRETRAINING_TOKENS = FINE_TUNING_TOKENS + ("[MASK]",)
REQUIRED_TOKENS = PRETRAINING_TOKENS

# GR 1.0.4 defines this flag in tokenization.py and its tokenizers read it, so its scripts (and
# its tokenization_test.py) switch the behaviour with --preserve_unused_tokens. We keep that as the
# default when the argument is not given. allow_override: GR's own module (loaded as a test oracle
# in the same process) may define the same flag.
flags.DEFINE_bool(
    "preserve_unused_tokens", False,
    "If True, [unusedN] tokens of the vocab are kept whole instead of being split by WordPiece "
    "(GR 1.0.4's flag).", allow_override=True)


def _preserve_unused_default(value):
  """The argument if given, else GR's --preserve_unused_tokens flag (parsed or not)."""
  if value is not None:
    return value
  values = flags.FLAGS
  # A process may have removed the flag again (tests that load several jobs do).
  return "preserve_unused_tokens" in values and bool(values["preserve_unused_tokens"].value)


_UNUSED_TOKEN_RE = re.compile(r"^\[unused\d+\]$")

# For the batch path. ASCII that GR's _clean_text deletes: controls other than \t \n \r.
_ASCII_DELETED = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
# GR's punctuation within ASCII: every printable non-alphanumeric character.
_ASCII_PUNCTUATION = [c for c in map(chr, range(0x21, 0x7F)) if not c.isalnum()]
# byte -> b" " for ASCII punctuation, else NUL (see _pad_ascii_punctuation).
_PUNCTUATION_SIDES = bytes(0x20 if chr(b) in _ASCII_PUNCTUATION else 0 for b in range(256))
# Runs of characters that need a per-character table: non-ASCII or ASCII controls; non-ASCII.
_SPECIAL_RUN_RE = re.compile("[^\t\n\r\x20-\x7e]+")
_NON_ASCII_RUN_RE = re.compile("[^\x00-\x7f]+")

# Checkpoint names GR's validate_case_matches_checkpoint knows.
_LOWER_MODELS = ("uncased_L-24_H-1024_A-16", "uncased_L-12_H-768_A-12",
                 "multilingual_L-12_H-768_A-12", "chinese_L-12_H-768_A-12")
_CASED_MODELS = ("cased_L-12_H-768_A-12", "cased_L-24_H-1024_A-16",
                 "multi_cased_L-12_H-768_A-12")


def validate_case_matches_checkpoint(do_lower_case, init_checkpoint):
  """Raises ValueError if `do_lower_case` contradicts a released checkpoint's name (as GR)."""
  if not init_checkpoint:
    return
  m = re.match(r"^.*?([A-Za-z0-9_-]+)/bert_model.ckpt", init_checkpoint)
  if m is None:
    return
  model_name = m.group(1)
  if model_name in _LOWER_MODELS and not do_lower_case:
    actual, case_name, wanted = "False", "lowercased", "True"
  elif model_name in _CASED_MODELS and do_lower_case:
    actual, case_name, wanted = "True", "cased", "False"
  else:
    return
  raise ValueError(
      f"You passed in `--do_lower_case={actual}` with `--init_checkpoint={init_checkpoint}`. "
      f"However, `{model_name}` seems to be a {case_name} model, so you should pass in "
      f"`--do_lower_case={wanted}` so that the fine-tuning matches how the model was "
      "pre-trained. If this error is wrong, please just comment out this check.")


def convert_to_unicode(text):
  """str stays str; bytes are decoded as utf-8, dropping invalid bytes (as GR)."""
  if isinstance(text, str):
    return text
  if isinstance(text, bytes):
    return text.decode("utf-8", "ignore")
  raise ValueError(f"Unsupported string type: {type(text)}")


def printable_text(text):
  """Text for printing or logging (a str on Python 3)."""
  return convert_to_unicode(text)


def load_vocab(vocab_file):
  """Reads a vocab file (one token per line) into an OrderedDict token -> id.

  Like GR, each line is stripped and a missing final newline is fine. Unlike GR, a duplicate token
  is an error: GR silently skips it, which shifts every later id away from the checkpoint's rows.
  """
  vocab = collections.OrderedDict()
  if "://" in vocab_file:  # TensorFlow only for remote files: data prep starts faster without it
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    if not tf.io.gfile.exists(vocab_file) or tf.io.gfile.isdir(vocab_file):
      raise errors.UserError("vocab file not found", vocab_file,
                             "pass --vocab_file=<the model's vocab.txt>")
    with tf.io.gfile.GFile(vocab_file, "rb") as reader:
      data = reader.read()
  else:
    if not os.path.isfile(vocab_file):
      raise errors.UserError("vocab file not found", vocab_file,
                             "pass --vocab_file=<the model's vocab.txt>")
    with open(vocab_file, "rb") as reader:
      data = reader.read()
  lines = convert_to_unicode(data).split("\n")
  if lines and lines[-1] == "":  # the final newline
    lines.pop()
  for line_no, line in enumerate(lines, 1):
    token = line.strip()
    if token in vocab:
      raise errors.UserError(
          f"duplicate token {token!r} (first on line {vocab[token] + 1})",
          errors.at(vocab_file, line_no),
          "each token must appear once (a duplicate shifts every later id); fix the vocab file")
    vocab[token] = len(vocab)
  return vocab


def check_vocab(vocab, vocab_file="vocab", required_tokens=REQUIRED_TOKENS):
  """Raises a UserError naming the file if any of `required_tokens` is missing."""
  missing = [t for t in required_tokens if t not in vocab]
  if missing:
    raise errors.UserError(
        f"missing required token(s) {', '.join(missing)}", vocab_file,
        f"this job needs {', '.join(required_tokens)} in the vocab (one per line); use the "
        "vocab.txt of the model")


def vocab_is_lower_case(vocab):
  """True if no entry of the vocab has an upper-case letter (an uncased model's vocab)."""
  return not any(t != t.lower() for t in vocab if not (t.startswith("[") and t.endswith("]")))


def warn_if_case_mismatch(vocab, do_lower_case, vocab_file="vocab"):
  """Logs a warning when --do_lower_case contradicts the vocab's case; returns the message.

  An uncased model's vocab has no upper-case entry: cased text would then map every capitalised
  word to [UNK] or to pieces. A cased vocab with lower-cased input wastes the upper-case entries
  and differs from how the model was pre-trained.
  """
  lower_vocab = vocab_is_lower_case(vocab)
  if lower_vocab == bool(do_lower_case):
    return None
  if lower_vocab:
    message = (f"{vocab_file} has no upper-case entry (an uncased model's vocab) but "
               "--do_lower_case=False: capitalised words will become [UNK]; pass "
               "--do_lower_case=True unless the model really is cased")
  else:
    message = (f"{vocab_file} has upper-case entries (a cased model's vocab) but "
               "--do_lower_case=True: pass --do_lower_case=False unless the model really was "
               "pre-trained on lower-cased text")
  logging.warning("%s", message)
  return message


def convert_by_vocab(vocab, items):
  """Maps each item through `vocab` (a KeyError names an unknown item)."""
  return [vocab[item] for item in items]


def convert_tokens_to_ids(vocab, tokens):
  return convert_by_vocab(vocab, tokens)


def convert_ids_to_tokens(inv_vocab, ids):
  return convert_by_vocab(inv_vocab, ids)


def whitespace_tokenize(text):
  """Strips and splits on whitespace (Python's definition, as GR)."""
  return text.split()


# ----------------------------------------------------------------------------------------------
# Character classes (GR's definitions, on this Python's unicodedata).


def _is_whitespace(char):
  """Space, \\t, \\n, \\r and category Zs."""
  return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char):
  """Categories Cc and Cf, except \\t, \\n, \\r (those count as whitespace)."""
  if char in "\t\n\r":
    return False
  return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char):
  """All non-alphanumeric printable ASCII, and Unicode categories P*."""
  cp = ord(char)
  if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
    return True
  return unicodedata.category(char).startswith("P")


def _is_chinese_char(cp):
  """GR's 'CJK character': the CJK Unified Ideographs blocks and compatibility ideographs."""
  return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or
          0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or
          0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class _CharMap(dict):
  """char -> what GR's clean + CJK steps make of it: "" (deleted), " " or " c " (CJK), or c."""

  def __missing__(self, char):
    cp = ord(char)
    if cp == 0 or cp == 0xFFFD or _is_control(char):
      out = ""
    elif _is_whitespace(char):
      out = " "
    elif _is_chinese_char(cp):
      out = f" {char} "
    else:
      out = char
    self[char] = out
    return out


_CHAR_MAP = _CharMap()


class _TranslateTable(dict):
  """Code point -> replacement string for `str.translate`, computed by `char_fn` on first sight."""

  def __init__(self, char_fn):
    super().__init__()
    self._char_fn = char_fn

  def __missing__(self, cp):
    out = self[cp] = self._char_fn(chr(cp))
    return out


def _pad_punctuation(char):
  return f" {char} " if _is_punctuation(char) else char


# Whole-text forms of GR's per-character steps (used by the batch path on non-ASCII text):
# cased: clean, pad CJK, pad punctuation; lower-cased (applied after lower() and NFD): drop Mn,
# pad punctuation.
_CASED_TABLE = _TranslateTable(
    lambda c: _pad_punctuation(c) if _CHAR_MAP[c] == c else _CHAR_MAP[c])
_CLEAN_TABLE = _TranslateTable(_CHAR_MAP.__getitem__)
_STRIP_MN_TABLE = _TranslateTable(
    lambda c: "" if unicodedata.category(c) == "Mn" else _pad_punctuation(c))


def _strip_accents(text):
  """NFD, then drop nonspacing marks (Mn)."""
  text = unicodedata.normalize("NFD", text)
  return "".join(c for c in text if unicodedata.category(c) != "Mn")


def _split_on_punc(text):
  """'a.b' -> ['a', '.', 'b']: every punctuation character becomes its own token."""
  output = []
  start_new_word = True
  for char in text:
    if _is_punctuation(char):
      output.append(char)
      start_new_word = True
    else:
      if start_new_word:
        output.append("")
      start_new_word = False
      output[-1] += char
  return output


def preserve_token(token, vocab, preserve_unused_tokens):
  """True for an `[unusedN]` token of the vocab when `preserve_unused_tokens` is set (GR 1.0.4)."""
  return bool(preserve_unused_tokens and token in vocab and _UNUSED_TOKEN_RE.search(token))


class BasicTokenizer(object):
  """Cleans text, splits CJK, lower-cases and strips accents (optionally), splits punctuation."""

  def __init__(self, do_lower_case=True, vocab=tuple(), preserve_unused_tokens=None):
    self.do_lower_case = do_lower_case
    self.vocab = vocab
    self.preserve_unused_tokens = _preserve_unused_default(preserve_unused_tokens)

  def tokenize(self, text):
    """str or utf-8 bytes -> list of basic tokens."""
    text = "".join(map(_CHAR_MAP.__getitem__, convert_to_unicode(text)))
    split_tokens = []
    for token in text.split():
      if preserve_token(token, self.vocab, self.preserve_unused_tokens):
        split_tokens.append(token)
        continue
      if self.do_lower_case:
        token = token.lower()
        if not token.isascii():
          token = _strip_accents(token)
      split_tokens.extend(_split_on_punc(token))
    # Re-split: lower-casing or NFD may have produced whitespace (as GR's final whitespace split).
    return " ".join(split_tokens).split()


class WordpieceTokenizer(object):
  """Greedy longest-match-first WordPiece; a word it cannot cover becomes `unk_token`."""

  def __init__(self, vocab, unk_token="[UNK]", max_input_chars_per_word=200):
    self.vocab = vocab
    self.unk_token = unk_token
    self.max_input_chars_per_word = max_input_chars_per_word
    # GR's search tries the longest candidate first; candidates longer than the longest entry
    # are skipped, and "##" entries are looked up without their "##" (no string concatenation).
    self._continuations = {t[2:] for t in vocab if t.startswith("##") and len(t) > 2}
    self._max_len = max(map(len, vocab), default=0)
    self._max_continuation_len = max(map(len, self._continuations), default=0)

  def tokenize(self, text):
    """'unaffable' -> ['un', '##aff', '##able'] (text: basic tokens separated by whitespace)."""
    output_tokens = []
    for token in convert_to_unicode(text).split():
      output_tokens.extend(self._tokenize_word(token))
    return output_tokens

  def _tokenize_word(self, word):
    n = len(word)
    if n > self.max_input_chars_per_word:
      return [self.unk_token]
    pieces, start = [], 0
    entries, max_len = self.vocab, self._max_len
    while start < n:
      end = min(n, start + max_len)
      while end > start and word[start:end] not in entries:  # shrink until an entry matches
        end -= 1
      if end == start:
        return [self.unk_token]
      pieces.append("##" + word[start:end] if start else word[start:end])
      start = end
      entries, max_len = self._continuations, self._max_continuation_len
    return pieces


def _pad_ascii_punctuation(data):
  """ASCII bytes -> the same with each punctuation byte p replaced by b" p ", at C speed.

  Every byte becomes three: (space or NUL, itself, space or NUL), a space beside punctuation;
  then the NULs are deleted (the text holds no NUL of its own: GR's cleaning removed it).
  """
  sides = data.translate(_PUNCTUATION_SIDES)
  out = bytearray(3 * len(data))
  out[0::3] = sides
  out[1::3] = data
  out[2::3] = sides
  return out.translate(None, b"\0")


class _PieceCache(dict):
  """basic token -> tuple of `value_fn(wordpiece)`, computed on first sight.

  Starts with the vocab's own entries (a token in the vocab is its single wordpiece), so only
  out-of-vocab tokens reach the WordPiece search. Cleared (and re-seeded) when full.
  """

  def __init__(self, vocab, wordpiece_tokenizer, value_fn, max_size):
    super().__init__()
    max_chars = wordpiece_tokenizer.max_input_chars_per_word
    self._seed = {t: (value_fn(t),) for t in vocab if len(t) <= max_chars}
    self._tokenize_word = wordpiece_tokenizer._tokenize_word  # pylint: disable=protected-access
    self._value_fn = value_fn
    self._max_size = max(max_size, 2 * len(self._seed))
    self.update(self._seed)

  def __missing__(self, token):
    value = tuple(map(self._value_fn, self._tokenize_word(token)))
    if len(self) >= self._max_size:  # bounded memory on unbounded vocabularies of raw text
      self.clear()
      self.update(self._seed)
    self[token] = value
    return value


class FullTokenizer(object):
  """End-to-end tokenization: BasicTokenizer then WordpieceTokenizer, with a fast batch path.

  `tokenize` gives exactly GR's tokens. For throughput, pass many texts at once:
    tokenize_batch(list of str) -> list of list of str
    convert_batch_to_ids(list of str) -> list of list of int   (tokenize + convert_tokens_to_ids)
  `tokenize_uncached` runs the plain per-character pipeline (the reference for the fast one).

  Like GR, any vocab is accepted; a job passes the special tokens it needs as `required_tokens`
  (FINE_TUNING_TOKENS, PRETRAINING_TOKENS) to get a clear error naming the vocab file.
  `preserve_unused_tokens=None` reads GR's --preserve_unused_tokens flag.
  """

  def __init__(self, vocab_file, do_lower_case=True, preserve_unused_tokens=None,
               required_tokens=(), cache_size=1 << 20):
    self.vocab_file = vocab_file
    self.do_lower_case = do_lower_case
    preserve_unused_tokens = _preserve_unused_default(preserve_unused_tokens)
    self.preserve_unused_tokens = preserve_unused_tokens
    self.vocab = load_vocab(vocab_file)
    check_vocab(self.vocab, vocab_file, required_tokens)
    self.inv_vocab = {v: k for k, v in self.vocab.items()}
    self.basic_tokenizer = BasicTokenizer(
        do_lower_case=do_lower_case, vocab=self.vocab,
        preserve_unused_tokens=preserve_unused_tokens)
    self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)
    # basic token -> tuple of its wordpieces / of their ids, for the fast path.
    self._piece_cache = _PieceCache(self.vocab, self.wordpiece_tokenizer, str, cache_size)
    self._id_cache = _PieceCache(self.vocab, self.wordpiece_tokenizer, self.vocab.__getitem__,
                                 cache_size)
    logging.info("Loaded %d wordpieces from %s (do_lower_case=%s)", len(self.vocab), vocab_file,
                 do_lower_case)

  def tokenize_uncached(self, text):
    """GR's FullTokenizer.tokenize, character by character."""
    split_tokens = []
    for token in self.basic_tokenizer.tokenize(text):
      if preserve_token(token, self.vocab, self.preserve_unused_tokens):
        split_tokens.append(token)
      else:
        split_tokens.extend(self.wordpiece_tokenizer._tokenize_word(token))  # pylint: disable=protected-access
    return split_tokens

  def tokenize(self, text):
    """str or utf-8 bytes -> list of wordpiece tokens (GR's result)."""
    return self._batch([text], as_ids=False)[0]

  def tokenize_to_ids(self, text):
    """str -> list of ids; same as convert_tokens_to_ids(tokenize(text)), faster."""
    return self._batch([text], as_ids=True)[0]

  def tokenize_batch(self, texts):
    """list of str (or utf-8 bytes) -> list of list of wordpiece tokens."""
    return self._batch(texts, as_ids=False)

  def convert_batch_to_ids(self, texts):
    """list of str (or utf-8 bytes) -> list of list of ids."""
    return self._batch(texts, as_ids=True)

  # --------------------------------------------------------------------------------------------
  # The fast path: GR's basic tokens from whole-text string operations (C speed), then WordPiece
  # once per distinct basic token (cached).

  def _batch(self, texts, as_ids):
    texts = [t if isinstance(t, str) else convert_to_unicode(t) for t in texts]
    token_lists = self._basic_token_lists(texts)
    pieces = (self._id_cache if as_ids else self._piece_cache).__getitem__
    chain = itertools.chain.from_iterable
    out = []
    for text, tokens in zip(texts, token_lists):
      if tokens is None:  # a possible [unusedN] to preserve: GR's own order of steps
        tokens = self.tokenize_uncached(text)
        out.append(self.convert_tokens_to_ids(tokens) if as_ids else tokens)
      else:
        out.append(list(chain(map(pieces, tokens))))
    return out

  def _basic_token_lists(self, texts):
    """GR's BasicTokenizer.tokenize of each text, or None where the slow path must run."""
    out = [None] * len(texts)
    # With preserve_unused_tokens an [unusedN] must be seen before lower-casing: such texts
    # (all hold a "[") take the slow path.
    todo = [i for i, t in enumerate(texts) if not (self.preserve_unused_tokens and "[" in t)]
    ascii_idx, other_idx = [], []
    for i in todo:
      (ascii_idx if texts[i].isascii() else other_idx).append(i)
    for idx, is_ascii in ((ascii_idx, True), (other_idx, False)):
      if idx:
        token_lists = self._joined_basic_tokens([texts[i] for i in idx], is_ascii)
        for i, tokens in zip(idx, token_lists):
          out[i] = tokens
    return out

  def _joined_basic_tokens(self, texts, is_ascii):
    """GR's basic tokenization of many texts at once, on their "\\n"-joined text.

    Each of GR's steps after the whitespace split acts within one word and keeps whitespace, so
    all can run on the whole text: lower() too, since its one context-dependent rule (Greek final
    sigma) looks no further than the nearest character that is neither cased nor
    case-ignorable, and whitespace is such a character; NFD reorders marks only between starters.
    Only runs of non-ASCII characters (and ASCII controls) go through per-character tables.
    """
    joined = "\n".join(texts)
    if joined.count("\n") >= len(texts):  # some texts hold newlines: whitespace to GR, like " "
      joined = "\n".join([t.replace("\n", " ") for t in texts])
    if is_ascii:
      data = joined.encode("ascii").translate(None, _ASCII_DELETED)
      if self.do_lower_case:
        data = data.lower()
      joined = _pad_ascii_punctuation(data).decode("ascii")
    else:
      if self.do_lower_case:
        joined = _SPECIAL_RUN_RE.sub(lambda m: m.group().translate(_CLEAN_TABLE), joined)
        joined = unicodedata.normalize("NFD", joined.lower())
        joined = _NON_ASCII_RUN_RE.sub(lambda m: m.group().translate(_STRIP_MN_TABLE), joined)
      else:
        joined = _SPECIAL_RUN_RE.sub(lambda m: m.group().translate(_CASED_TABLE), joined)
      for char in _ASCII_PUNCTUATION:
        joined = joined.replace(char, f" {char} ")
    return list(map(str.split, joined.split("\n")))

  def convert_tokens_to_ids(self, tokens):
    return convert_by_vocab(self.vocab, tokens)

  def convert_ids_to_tokens(self, ids):
    return convert_by_vocab(self.inv_vocab, ids)
