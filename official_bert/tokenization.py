"""WordPiece tokenization with GR's API and GR's exact output, plus a fast batch path.

`FullTokenizer`, `BasicTokenizer`, `WordpieceTokenizer` and the module functions keep the names and
behaviour of google-research/bert `tokenization.py` (1.0.4, incl. `preserve_unused_tokens`).

GR's pipeline is: decode utf-8 (dropping bad bytes) -> drop NUL, U+FFFD, Cc and Cf (but \\t \\n \\r)
and map whitespace to " " -> pad CJK ideographs with spaces -> split on whitespace -> per word:
`str.lower()` then NFD and drop Mn (only with do_lower_case) -> split off punctuation -> greedy
longest-match WordPiece (words over 200 characters become [UNK]).

Every step but the first whitespace split works inside one whitespace-delimited word, so the result
for a text is the concatenation of the results for its `str.split()` words, once the few characters
that `str.split()` treats as separators but GR deletes (\\v \\f \\x1c-\\x1f \\x85) are removed first.
The fast path (`tokenize`, `tokenize_batch`, `convert_batch_to_ids`) caches the result per raw word.
The in-graph path is `official_bert.layers.preprocessing`.
"""

import collections
import itertools
import re
import unicodedata

from absl import logging
import tensorflow as tf

# Tokens every BERT vocab must have: wordpiece falls back to [UNK]; features use the other three.
REQUIRED_TOKENS = ("[UNK]", "[CLS]", "[SEP]", "[MASK]")

_UNUSED_TOKEN_RE = re.compile(r"^\[unused\d+\]$")

# Characters that str.split() splits on but GR's _clean_text deletes (they are Cc).
_SPLIT_BUT_DELETED_RE = re.compile("[\x0b\x0c\x1c-\x1f\x85]")

# ASCII that needs GR's full treatment: controls (deleted) and "[" (maybe an [unusedN] to keep).
_ASCII_SPECIAL_RE = re.compile(r"[\x00-\x1f\x7f\[]")
# Clean ASCII text -> GR's basic tokens: single punctuation characters (GR's ASCII rule: all
# printable non-alphanumerics) and runs of other non-space characters.
_ASCII_BASIC_RE = re.compile(r"[!-/:-@\[-`{-~]|[^ \t\n\r!-/:-@\[-`{-~]+")
# ASCII that GR's _clean_text deletes: controls other than \t \n \r.
_ASCII_DELETED_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

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
  with tf.io.gfile.GFile(vocab_file, "rb") as reader:
    data = reader.read()
  lines = convert_to_unicode(data).split("\n")
  if lines and lines[-1] == "":  # the final newline
    lines.pop()
  for line_no, line in enumerate(lines, 1):
    token = line.strip()
    if token in vocab:
      raise ValueError(
          f"{vocab_file}:{line_no}: duplicate token {token!r} (first on line "
          f"{vocab[token] + 1}); each token must appear once, fix the vocab file")
    vocab[token] = len(vocab)
  return vocab


def check_vocab(vocab, vocab_file="vocab", required_tokens=REQUIRED_TOKENS):
  """Raises a ValueError naming the file if any of `required_tokens` is missing."""
  missing = [t for t in required_tokens if t not in vocab]
  if missing:
    raise ValueError(
        f"{vocab_file}: missing required token(s) {', '.join(missing)}; a BERT vocab needs "
        f"{', '.join(required_tokens)} (one per line)")


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

  def __init__(self, do_lower_case=True, vocab=tuple(), preserve_unused_tokens=False):
    self.do_lower_case = do_lower_case
    self.vocab = vocab
    self.preserve_unused_tokens = preserve_unused_tokens

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
    # Every prefix of every vocab entry: the longest match is found by scanning forward while
    # the candidate is still such a prefix (same result as GR's shrinking search, fewer lookups).
    self._prefixes = {t[:i] for t in vocab for i in range(1, len(t) + 1)}

  def tokenize(self, text):
    """'unaffable' -> ['un', '##aff', '##able'] (text: basic tokens separated by whitespace)."""
    output_tokens = []
    for token in convert_to_unicode(text).split():
      output_tokens.extend(self._tokenize_word(token))
    return output_tokens

  def _tokenize_word(self, word):
    if len(word) > self.max_input_chars_per_word:
      return [self.unk_token]
    vocab = self.vocab
    if word in vocab:
      return [word]
    prefixes = self._prefixes
    pieces = []
    start, n = 0, len(word)
    while start < n:
      prefix = "##" if start > 0 else ""
      match = None
      end = start + 1
      while end <= n:
        candidate = prefix + word[start:end]
        if candidate not in prefixes:
          break
        if candidate in vocab:
          match = end
        end += 1
      if match is None:
        return [self.unk_token]
      pieces.append(prefix + word[start:match])
      start = match
    return pieces


class _WordCache(dict):
  """raw whitespace-delimited word -> tuple of its wordpieces (computed on first sight)."""

  def __init__(self, tokenize_fn, max_size):
    super().__init__()
    self._tokenize_fn = tokenize_fn
    self._max_size = max_size

  def __missing__(self, word):
    value = tuple(self._tokenize_fn(word))
    if len(self) >= self._max_size:  # bounded memory on unbounded vocabularies of raw words
      self.clear()
    self[word] = value
    return value


class FullTokenizer(object):
  """End-to-end tokenization: BasicTokenizer then WordpieceTokenizer, with a per-word cache.

  `tokenize` gives exactly GR's tokens. For throughput, pass many texts at once:
    tokenize_batch(list of str) -> list of list of str
    convert_batch_to_ids(list of str) -> list of list of int   (tokenize + convert_tokens_to_ids)
  `tokenize_uncached` runs the plain per-character pipeline (the reference for the cached one).
  """

  def __init__(self, vocab_file, do_lower_case=True, preserve_unused_tokens=False,
               required_tokens=REQUIRED_TOKENS, cache_size=1 << 20):
    self.vocab_file = vocab_file
    self.do_lower_case = do_lower_case
    self.preserve_unused_tokens = preserve_unused_tokens
    self.vocab = load_vocab(vocab_file)
    check_vocab(self.vocab, vocab_file, required_tokens)
    self.inv_vocab = {v: k for k, v in self.vocab.items()}
    self.basic_tokenizer = BasicTokenizer(
        do_lower_case=do_lower_case, vocab=self.vocab,
        preserve_unused_tokens=preserve_unused_tokens)
    self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)
    # basic token -> wordpieces / ids (used for ASCII text)
    self._piece_tokens = _WordCache(self.wordpiece_tokenizer._tokenize_word, cache_size)  # pylint: disable=protected-access
    self._piece_ids = _WordCache(
        lambda token: [self.vocab[p] for p in self._piece_tokens[token]], cache_size)
    # raw whitespace-delimited word -> wordpieces / ids (used for other text)
    self._token_cache = _WordCache(lambda word: self._word_pieces(word)[0], cache_size)
    self._id_cache = _WordCache(lambda word: self._word_pieces(word)[1], cache_size)
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

  def _word_pieces(self, word):
    """One raw whitespace-free word -> (wordpieces, ids)."""
    if not word.isascii() or _ASCII_SPECIAL_RE.search(word):
      pieces = self.tokenize_uncached(word)
      return pieces, [self.vocab[p] for p in pieces]
    if self.do_lower_case:
      word = word.lower()
    tokens = _ASCII_BASIC_RE.findall(word)
    return ([p for t in tokens for p in self._piece_tokens[t]],
            [i for t in tokens for i in self._piece_ids[t]])

  def tokenize(self, text):
    """str or utf-8 bytes -> list of wordpiece tokens (GR's result)."""
    return self._batch([text], self._piece_tokens, self._token_cache)[0]

  def tokenize_to_ids(self, text):
    """str -> list of ids; same as convert_tokens_to_ids(tokenize(text)), faster."""
    return self._batch([text], self._piece_ids, self._id_cache)[0]

  def tokenize_batch(self, texts):
    """list of str (or utf-8 bytes) -> list of list of wordpiece tokens."""
    return self._batch(texts, self._piece_tokens, self._token_cache)

  def convert_batch_to_ids(self, texts):
    """list of str (or utf-8 bytes) -> list of list of ids."""
    return self._batch(texts, self._piece_ids, self._id_cache)

  def _batch(self, texts, piece_cache, word_cache):
    """ASCII texts: regex basic tokens, cached per basic token; others: cached per raw word."""
    chain = itertools.chain.from_iterable
    texts = [t if isinstance(t, str) else convert_to_unicode(t) for t in texts]
    out = [None] * len(texts)
    ascii_idx = []
    if not self.preserve_unused_tokens:  # else [unusedN] must be seen before lower-casing
      ascii_idx = [i for i, t in enumerate(texts) if t.isascii()]
    if ascii_idx:
      # Clean and lower-case all ASCII texts in one go ("\n" is whitespace to GR as well).
      joined = _ASCII_DELETED_RE.sub("", "\n".join([texts[i] for i in ascii_idx]))
      if self.do_lower_case:
        joined = joined.lower()
      cleaned = joined.split("\n")
      if len(cleaned) != len(ascii_idx):  # some texts hold newlines: one at a time
        cleaned = [_ASCII_DELETED_RE.sub("", texts[i]) for i in ascii_idx]
        if self.do_lower_case:
          cleaned = [t.lower() for t in cleaned]
      token_lists = list(map(_ASCII_BASIC_RE.findall, cleaned))
      self._fill_piece_caches(token_lists)
      piece = piece_cache.__getitem__
      for i, tokens in zip(ascii_idx, token_lists):
        out[i] = list(chain(map(piece, tokens)))
    if len(ascii_idx) < len(texts):
      word = word_cache.__getitem__
      for i, text in enumerate(texts):
        if out[i] is None:
          out[i] = list(chain(map(word, _SPLIT_BUT_DELETED_RE.sub("", text).split())))
    return out

  def _fill_piece_caches(self, token_lists):
    """Caches every new basic token; in-vocabulary ones without a WordPiece search."""
    vocab_get, tokens, ids = self.vocab.get, self._piece_tokens, self._piece_ids
    # Membership tests, not a set difference: that would walk the whole cache on every call.
    missing = {t for t in itertools.chain.from_iterable(token_lists) if t not in ids}
    for token in missing:
      i = vocab_get(token)
      if i is not None and len(token) <= self.wordpiece_tokenizer.max_input_chars_per_word:
        tokens[token], ids[token] = (token,), (i,)

  def convert_tokens_to_ids(self, tokens):
    return convert_by_vocab(self.vocab, tokens)

  def convert_ids_to_tokens(self, ids):
    return convert_by_vocab(self.inv_vocab, ids)
