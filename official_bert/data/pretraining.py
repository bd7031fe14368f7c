"""Pre-training data: GR's masked-LM / next-sentence instances and their TFRecord schema.

This module is the one owner of
  * the TFRecord schema (`feature_spec`, `parse_example`, `FEATURE_NAMES`),
  * the instance logic of GR's `create_pretraining_data.py` (`InstanceMaker`), working on token ids
    and drawing from one `random.Random` exactly as GR does (same calls, same order), so that the
    compat pipeline reproduces GR's records and the scale / Beam pipelines share the same rules,
  * a deterministic, fast serializer (`ExampleEncoder`): the bytes equal
    `tf.train.Example.SerializeToString(deterministic=True)` (feature keys sorted), built directly
    from precomputed varints instead of one protobuf object per instance.

The pipelines that drive it live in `data_prep/pretraining_pipeline.py` and `data_prep/beam_pipeline.py`.
Dimension legend: S = max_seq_length, P = max_predictions_per_seq.
"""

import struct

# GR's feature order (the order GR logs them in); the serializer sorts them, as protobuf does.
FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions",
                 "masked_lm_ids", "masked_lm_weights", "next_sentence_labels")


def feature_spec(max_seq_length, max_predictions_per_seq):
  """name -> tf.io.FixedLenFeature for one pre-training tf.train.Example (GR's schema)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  s, p = max_seq_length, max_predictions_per_seq
  return {
      "input_ids": tf.io.FixedLenFeature([s], tf.int64),
      "input_mask": tf.io.FixedLenFeature([s], tf.int64),
      "segment_ids": tf.io.FixedLenFeature([s], tf.int64),
      "masked_lm_positions": tf.io.FixedLenFeature([p], tf.int64),
      "masked_lm_ids": tf.io.FixedLenFeature([p], tf.int64),
      "masked_lm_weights": tf.io.FixedLenFeature([p], tf.float32),
      "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
  }


def parse_example(serialized, max_seq_length, max_predictions_per_seq):
  """Serialized Example(s) -> dict of tensors; int64 cast to int32 as GR's `_decode_record`.

  Works on a scalar string ([S], [P], [1] features) or a batch ([B, S], ...).
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  spec = feature_spec(max_seq_length, max_predictions_per_seq)
  if serialized.shape.rank == 0:
    example = tf.io.parse_single_example(serialized, spec)
  else:
    example = tf.io.parse_example(serialized, spec)
  return {name: tf.cast(t, tf.int32) if t.dtype == tf.int64 else t
          for name, t in example.items()}


# ---------------------------------------------------------------------------------------------
# Serialization: protobuf wire format written by hand (see module docstring).
# ---------------------------------------------------------------------------------------------


def _varint(n):
  out = bytearray()
  while n >= 0x80:
    out.append((n & 0x7F) | 0x80)
    n >>= 7
  out.append(n)
  return bytes(out)


class ExampleEncoder(object):
  """Instance -> serialized tf.train.Example, byte-stable (keys sorted, packed lists)."""

  def __init__(self, max_seq_length, max_predictions_per_seq, vocab_size):
    self.s = max_seq_length
    self.p = max_predictions_per_seq
    # Varints of every value or length we can meet: ids < vocab_size, payloads < 4 * S.
    self._v = [_varint(i) for i in range(max(vocab_size, 4 * max_seq_length + 64, 256))]
    self._zeros = b"\x00" * (4 * max(max_seq_length, max_predictions_per_seq))
    self._ones = b"\x01" * max_seq_length
    self._one_f = struct.pack("<f", 1.0)

    def entry_prefix(key, kind_tag):
      # map entry: key (field 1) + value Feature (field 2) whose oneof field is `kind_tag`.
      return b"\x0a" + _varint(len(key)) + key.encode() + b"\x12", kind_tag

    self._keys = {name: entry_prefix(name, b"\x12" if name == "masked_lm_weights" else b"\x1a")
                  for name in FEATURE_NAMES}
    # Fields whose payload length is fixed get their whole entry header precomputed.
    fixed = {"input_mask": max_seq_length, "segment_ids": max_seq_length,
             "masked_lm_weights": 4 * max_predictions_per_seq, "next_sentence_labels": 1}
    self._head = {name: self._entry(name, b"\x00" * n)[:-n] for name, n in fixed.items()}

  def _entry(self, name, payload):
    """One map entry `name -> Feature{<kind>_list{value: payload (packed)}}`."""
    v = self._v
    prefix, kind = self._keys[name]
    lst = b"\x0a" + v[len(payload)] + payload            # Int64List / FloatList, field 1 packed
    feat = kind + v[len(lst)] + lst                       # Feature oneof
    ent = prefix + v[len(feat)] + feat                    # map<string, Feature> entry
    return b"\x0a" + v[len(ent)] + ent                    # Features.feature (field 1)

  def encode(self, input_ids, num_a, masked_lm_positions, masked_lm_ids, is_random_next):
    """input_ids: unpadded [L] (after masking); num_a: tokens with segment 0 ([CLS] A [SEP])."""
    v, s, p, zeros = self._v, self.s, self.p, self._zeros
    n = len(input_ids)
    k = len(masked_lm_positions)
    pad = s - n
    head = self._head
    ones = self._ones
    # Keys in sorted order, as protobuf's deterministic serialization writes map entries.
    body = b"".join((
        self._entry("input_ids", b"".join(map(v.__getitem__, input_ids)) + zeros[:pad]),
        head["input_mask"], ones[:n], zeros[:pad],
        self._entry("masked_lm_ids",
                    b"".join(map(v.__getitem__, masked_lm_ids)) + zeros[:p - k]),
        self._entry("masked_lm_positions",
                    b"".join(map(v.__getitem__, masked_lm_positions)) + zeros[:p - k]),
        head["masked_lm_weights"], self._one_f * k, zeros[:4 * (p - k)],
        head["next_sentence_labels"], v[1] if is_random_next else v[0],
        head["segment_ids"], zeros[:num_a], ones[:n - num_a], zeros[:pad],
    ))
    return b"\x0a" + v[len(body)] + body                  # Example.features (field 1)


# ---------------------------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------------------------


def iter_lines(path):
  """Raw lines (bytes) of a local or remote (gs://...) file, split on b"\\n" as GR's readline."""
  if "://" in path:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    with tf.io.gfile.GFile(path, "rb") as f:
      while True:
        line = f.readline()
        if not line:
          return
        yield line
  else:
    with open(path, "rb") as f:
      yield from f


def iter_documents(input_files, tokenize_to_ids, batch=False):
  """Yields GR's documents: lists of sentences, each a list of token ids.

  GR's input rules: one sentence per line, a blank line ends a document (documents continue across
  files, as in GR), lines decode as utf-8 dropping invalid bytes, lines with no tokens are dropped,
  documents with no sentences are skipped. batch=True: `tokenize_to_ids` takes the list of a
  document's lines (e.g. FullTokenizer.convert_batch_to_ids), which is much faster.
  """
  def finish(lines):
    ids = tokenize_to_ids(lines) if batch else map(tokenize_to_ids, lines)
    return [s for s in ids if s]

  lines = []
  for path in input_files:
    for raw in iter_lines(path):
      line = raw.decode("utf-8", "ignore").strip()
      if line:
        lines.append(line)
        continue
      doc = finish(lines)
      lines = []
      if doc:
        yield doc
  doc = finish(lines)
  if doc:
    yield doc


# ---------------------------------------------------------------------------------------------
# Instances
# ---------------------------------------------------------------------------------------------


_BIT_LENGTH = [n.bit_length() for n in range(4097)]


class InstanceMaker(object):
  """GR's create_instances_from_document + create_masked_lm_predictions, on token ids.

  Draws from `rng` exactly as GR does (rng.random / randint / shuffle, same calls, same order),
  with `randint` and `shuffle` inlined as CPython implements them (`_randbelow` via getrandbits).
  Output instances are serialized at once (`ExampleEncoder`), so only bytes are kept in memory.
  """

  def __init__(self, vocab, max_seq_length=128, short_seq_prob=0.1, masked_lm_prob=0.15,
               max_predictions_per_seq=20, do_whole_word_mask=False):
    self.max_seq_length = max_seq_length
    self.short_seq_prob = short_seq_prob
    self.masked_lm_prob = masked_lm_prob
    self.max_predictions_per_seq = max_predictions_per_seq
    self.do_whole_word_mask = do_whole_word_mask
    self.cls_id = vocab["[CLS]"]
    self.sep_id = vocab["[SEP]"]
    self.mask_id = vocab["[MASK]"]
    # GR draws the random replacement as vocab_words[randint(0, len - 1)], vocab order.
    self.vocab_word_ids = list(vocab.values())
    size = max(vocab.values()) + 1
    self.is_continuation = bytearray(size)  # id -> 1 if its wordpiece starts with "##"
    for token, i in vocab.items():
      if token.startswith("##"):
        self.is_continuation[i] = 1
    self.encoder = ExampleEncoder(max_seq_length, max_predictions_per_seq, size)

  def instances_from_document(self, all_documents, document_index, rng, out):
    """Appends serialized instances of one document to `out` (GR's algorithm, same rng calls)."""
    random = rng.random
    getrandbits = self._getrandbits = rng.getrandbits

    def randbelow(n):  # CPython's Random._randbelow_with_getrandbits
      k = n.bit_length()
      r = getrandbits(k)
      while r >= n:
        r = getrandbits(k)
      return r

    document = all_documents[document_index]
    max_num_tokens = self.max_seq_length - 3  # [CLS], [SEP], [SEP]
    target_seq_length = max_num_tokens
    if random() < self.short_seq_prob:
      target_seq_length = 2 + randbelow(max_num_tokens - 1)  # randint(2, max_num_tokens)

    n_sent = len(document)
    current_chunk = []
    current_length = 0
    i = 0
    while i < n_sent:
      segment = document[i]
      current_chunk.append(segment)
      current_length += len(segment)
      if i == n_sent - 1 or current_length >= target_seq_length:
        a_end = 1
        if len(current_chunk) >= 2:
          a_end = 1 + randbelow(len(current_chunk) - 1)  # randint(1, len - 1)
        tokens_a = []
        for j in range(a_end):
          tokens_a.extend(current_chunk[j])
        tokens_b = []
        if len(current_chunk) == 1 or random() < 0.5:
          is_random_next = True
          target_b_length = target_seq_length - len(tokens_a)
          # Up to 10 tries for a document other than this one (as GR).
          for _ in range(10):
            random_document_index = randbelow(len(all_documents))
            if random_document_index != document_index:
              break
          random_document = all_documents[random_document_index]
          for j in range(randbelow(len(random_document)), len(random_document)):
            tokens_b.extend(random_document[j])
            if len(tokens_b) >= target_b_length:
              break
          # The unused segments go back to be used by the next instance.
          i -= len(current_chunk) - a_end
        else:
          is_random_next = False
          for j in range(a_end, len(current_chunk)):
            tokens_b.extend(current_chunk[j])
        # GR's truncate_seq_pair: trim the longer side, from the front or back at random.
        while len(tokens_a) + len(tokens_b) > max_num_tokens:
          trunc = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
          if random() < 0.5:
            del trunc[0]
          else:
            trunc.pop()
        assert tokens_a and tokens_b

        tokens = [self.cls_id, *tokens_a, self.sep_id, *tokens_b, self.sep_id]
        out.append(self._mask_and_encode(tokens, len(tokens_a) + 2, is_random_next,
                                         random, randbelow))
        current_chunk = []
        current_length = 0
      i += 1

  def _mask_and_encode(self, tokens, num_a, is_random_next, random, randbelow):
    """GR's create_masked_lm_predictions (incl. whole-word masking), then serialization."""
    cls_id, sep_id = self.cls_id, self.sep_id
    if self.do_whole_word_mask:
      # A "##" piece joins the previous candidate, so a word is masked whole or not at all.
      cont = self.is_continuation
      cand = []
      for i, t in enumerate(tokens):
        if t == cls_id or t == sep_id:
          continue
        if cand and cont[t]:
          cand[-1].append(i)
        else:
          cand.append([i])
    else:
      # Every position but [CLS] A [SEP] B [SEP]'s three markers (word pieces never equal them).
      cand = [*range(1, num_a - 1), *range(num_a, len(tokens) - 1)]
    # random.shuffle, as CPython does it (j = _randbelow(i + 1), inlined).
    getrandbits = self._getrandbits
    for i in range(len(cand) - 1, 0, -1):
      k = _BIT_LENGTH[i + 1]
      j = getrandbits(k)
      while j > i:
        j = getrandbits(k)
      cand[i], cand[j] = cand[j], cand[i]

    output = list(tokens)
    num_to_predict = min(self.max_predictions_per_seq,
                         max(1, int(round(len(tokens) * self.masked_lm_prob))))
    vocab_word_ids = self.vocab_word_ids
    n_vocab = len(vocab_word_ids)
    mask_id = self.mask_id
    masked = []
    if self.do_whole_word_mask:
      for index_set in cand:
        if len(masked) >= num_to_predict:
          break
        if len(masked) + len(index_set) > num_to_predict:  # a word that does not fit is skipped
          continue
        for index in index_set:
          if random() < 0.8:  # 80%: [MASK]
            output[index] = mask_id
          elif random() >= 0.5:  # 10%: a random word (10%: keep)
            output[index] = vocab_word_ids[randbelow(n_vocab)]
          masked.append(index)
    else:
      for index in cand:
        if len(masked) >= num_to_predict:
          break
        if random() < 0.8:
          output[index] = mask_id
        elif random() >= 0.5:
          output[index] = vocab_word_ids[randbelow(n_vocab)]
        masked.append(index)
    masked.sort()
    return self.encoder.encode(output, num_a, masked, [tokens[i] for i in masked],
                               is_random_next)

  def instances_from_documents(self, all_documents, dupe_factor, rng):
    """GR's loop: dupe_factor passes over all documents, then one shuffle of all instances."""
    records = []
    for _ in range(dupe_factor):
      for document_index in range(len(all_documents)):
        self.instances_from_document(all_documents, document_index, rng, records)
    rng.shuffle(records)
    return records


# ---------------------------------------------------------------------------------------------
# Scale mode: GR's rules, vectorised over a whole chunk with numpy (not GR's random stream).
# N = instances in a batch, W = values per row, R = records.
# ---------------------------------------------------------------------------------------------


def _np():
  import numpy as np  # pylint: disable=import-outside-toplevel
  return np


class VarintTable(object):
  """Packed varints of many values at once, by table lookup (values < `size` < 2^28)."""

  def __init__(self, size):
    np = _np()
    v = np.arange(size, dtype=np.uint32)
    self.nbytes = (1 + (v >= 1 << 7).astype(np.int8) + (v >= 1 << 14)
                   + (v >= 1 << 21)).astype(np.int8)                    # [size]
    # Each value's varint bytes, little-endian in one uint32 (one gather per value, not 4).
    self.packed = np.zeros(size, "<u4")
    for i in range(4):
      byte = (v >> (7 * i)) & 0x7F
      byte |= (i < self.nbytes - 1).astype(np.uint32) << 7               # continuation bit
      self.packed |= byte << (8 * i)

  def rows(self, values):
    """values [N, W] -> (bytes uint8 [sum], bytes per row [N]): each row's values packed."""
    np = _np()
    n, w = values.shape
    top = int(values.max()) if values.size else 0
    if top >= len(self.nbytes):
      raise ValueError(f"value {top} >= varint table size {len(self.nbytes)}")
    if top < 1 << 7:  # one byte each: the values themselves (e.g. positions < 128)
      return values.astype(np.uint8).reshape(-1), np.full(n, w, np.int64)
    nb = self.nbytes[values].reshape(-1)                                  # [N*W]
    ends = np.cumsum(nb, dtype=np.int64)
    starts = ends - nb
    packed = self.packed[values].reshape(-1)                              # [N*W]
    # Byte j of every value goes to starts + j, highest j first: a value shorter than j bytes
    # writes past its end, into a later value's byte k < j, which the pass for k rewrites.
    out = np.empty(int(ends[-1]) + 4, np.uint8)
    for j in range(int(self.nbytes[top]) - 1, -1, -1):  # nbytes grows with the value
      out[starts + j] = (packed >> (8 * j)).astype(np.uint8)
    return out[:int(ends[-1])], nb.reshape(n, w).sum(axis=1, dtype=np.int64)


def masked_crc32c(data):
  """TFRecord's checksum: crc32c rotated right by 15 bits plus a constant."""
  import google_crc32c  # pylint: disable=import-outside-toplevel
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class _Headers(dict):
  """payload length -> header bytes, computed on first use (lengths repeat a lot)."""

  def __init__(self, fn):
    super().__init__()
    self._fn = fn

  def __missing__(self, n):
    self[n] = value = self._fn(n)
    return value


def truncated_lengths(len_a, len_b, max_num_tokens):
  """GR's truncate_seq_pair in closed form: lengths [N] -> lengths after truncation.

  The longer side loses tokens until both are equal, then they alternate (a tie trims b), so an
  over-long pair ends at exactly max_num_tokens with a = ceil(max_num_tokens / 2).
  """
  np = _np()
  excess = np.maximum(len_a + len_b - max_num_tokens, 0)
  one_sided = np.abs(len_a - len_b) >= excess
  a_longer = len_a > len_b
  new_a = np.where(one_sided, np.where(a_longer, len_a - excess, len_a), (max_num_tokens + 1) // 2)
  new_b = np.where(one_sided, np.where(a_longer, len_b, len_b - excess), max_num_tokens // 2)
  return new_a, new_b


class ChunkInstanceMaker(object):
  """GR's instance rules for scale mode, with numpy over all instances of a chunk.

  Same distribution as GR's create_pretraining_data (short-sequence targets, segment split,
  50% random next sentence with unused segments put back, truncation of the longer side from a
  random end, num_to_predict, 80/10/10, whole-word masking's greedy word selection), not the same
  random stream: segmentation draws from a `random.Random`, everything per token from a numpy
  Generator, both seeded by the caller. Records equal what `ExampleEncoder` would write.
  """

  def __init__(self, vocab, max_seq_length=128, short_seq_prob=0.1, masked_lm_prob=0.15,
               max_predictions_per_seq=20, do_whole_word_mask=False, batch_size=4096):
    np = _np()
    self.max_seq_length = max_seq_length
    self.short_seq_prob = short_seq_prob
    self.masked_lm_prob = masked_lm_prob
    self.max_predictions_per_seq = max_predictions_per_seq
    self.do_whole_word_mask = do_whole_word_mask
    self.batch_size = batch_size
    self.cls_id, self.sep_id, self.mask_id = vocab["[CLS]"], vocab["[SEP]"], vocab["[MASK]"]
    self.vocab_word_ids = np.array(list(vocab.values()), np.int32)
    size = max(vocab.values()) + 1
    self.is_continuation = np.zeros(size, bool)
    for token, i in vocab.items():
      if token.startswith("##"):
        self.is_continuation[i] = True
    s, p = max_seq_length, max_predictions_per_seq
    enc = ExampleEncoder(s, p, 1)  # only its headers are used here: no per-id varint table
    # Constant pieces of a record (see ExampleEncoder).
    self._head = enc._head                                          # pylint: disable=protected-access
    self.varint = VarintTable(max(size, 1 << 14))
    # Header bytes before a payload of length L, per variable-length feature and for the body.
    self._entry_head = {name: _Headers(lambda l, name=name: enc._entry(name, b"\x00" * l)[:-l])  # pylint: disable=protected-access
                        for name in ("input_ids", "masked_lm_ids", "masked_lm_positions")}
    self._body_head = _Headers(lambda l: b"\x0a" + _varint(l))
    self._frame_head = _Headers(lambda l: struct.pack("<Q", l) +
                                struct.pack("<I", masked_crc32c(struct.pack("<Q", l))))

  # -- segmentation (per sentence, Python; no per-token work) ------------------------------------

  def segment(self, sent_starts, doc_first, doc_count, dupe_factor, rng):
    """GR's create_instances_from_document on sentence offsets, for every document, dupe times.

    sent_starts: [num_sentences + 1] token offsets (list); documents are runs of sentences.
    Returns int64 [R, 5]: a_lo, a_hi, b_lo, b_hi (token offsets) and is_random_next.
    """
    import bisect  # pylint: disable=import-outside-toplevel
    np = _np()
    random = rng.random  # int(random() * n): uniform on range(n), cheaper than randrange
    max_num_tokens = self.max_seq_length - 3
    n_docs = len(doc_first)
    out = []
    append = out.append
    s0 = sent_starts
    for _ in range(dupe_factor):
      for d in range(n_docs):
        first, n = doc_first[d], doc_count[d]
        target = max_num_tokens
        if random() < self.short_seq_prob:
          target = 2 + int(random() * (max_num_tokens - 1))  # randint(2, max_num_tokens)
        start = 0
        while start < n:
          # GR adds sentences until the chunk reaches `target` tokens or the document ends:
          # i = the first sentence at which that happens.
          i = bisect.bisect_left(s0, s0[first + start] + target, first + start + 1,
                                 first + n) - first - 1
          n_chunk = i - start + 1
          a_end = start + (1 + int(random() * (n_chunk - 1)) if n_chunk >= 2 else 1)
          a_lo, a_hi = s0[first + start], s0[first + a_end]
          if n_chunk == 1 or random() < 0.5:
            for _ in range(10):  # up to 10 tries for another document, as GR
              rd = int(random() * n_docs)
              if rd != d:
                break
            rf, rn = doc_first[rd], doc_count[rd]
            j = rf + int(random() * rn)
            b_lo = s0[j]
            # Sentences from j until target_b_length is reached or the document ends.
            end = bisect.bisect_left(s0, b_lo + target - (a_hi - a_lo), j + 1, rf + rn)
            append((a_lo, a_hi, b_lo, s0[end], 1))
            i = a_end - 1  # the unused segments go back
          else:
            append((a_lo, a_hi, a_hi, s0[first + i + 1], 0))
          start = i + 1
    return np.array(out, np.int64).reshape(-1, 5)

  # -- per-token work, vectorised ----------------------------------------------------------------

  def encode(self, flat_ids, spans, gen, frame=False):
    """Token ids [T] + spans [N, 5] (see `segment`) -> list of N serialized records."""
    np = _np()
    s, p = self.max_seq_length, self.max_predictions_per_seq
    n = len(spans)
    a_lo, a_hi, b_lo, b_hi, is_random_next = spans.T
    la, lb = a_hi - a_lo, b_hi - b_lo
    # GR's truncate_seq_pair: each removal is from the front or the back with p=0.5, so the
    # number taken from the front is binomial.
    la2, lb2 = truncated_lengths(la, lb, s - 3)
    a_lo = a_lo + gen.binomial(la - la2, 0.5)
    b_lo = b_lo + gen.binomial(lb - lb2, 0.5)
    la, lb = la2, lb2
    length = la + lb + 3                                                  # [N]
    num_a = la + 2                                                        # [CLS] A [SEP]

    pos = np.arange(s)[None, :]                                           # [1, S]
    src = np.where(pos <= la[:, None], a_lo[:, None] + pos - 1, b_lo[:, None] + pos - num_a[:, None])
    tokens = np.take(flat_ids, src, mode="clip").astype(np.int32)         # [N, S]
    in_seq = pos < length[:, None]
    sep = (pos == num_a[:, None] - 1) | (pos == length[:, None] - 1)
    tokens[:, 0] = self.cls_id
    tokens[sep] = self.sep_id
    tokens[~in_seq] = 0
    cand = in_seq & ~sep
    cand[:, 0] = False

    num_to_predict = np.minimum(p, np.maximum(1, np.rint(length * self.masked_lm_prob)))
    selected = self._select(tokens, cand, num_to_predict.astype(np.int64), gen)  # [N, S] bool
    rows, cols = np.nonzero(selected)                 # row-major: positions ascending per row
    k = selected.sum(axis=1)                                              # [N]
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(k) - k, k)
    originals = tokens[rows, cols]
    # 80% [MASK], 10% kept, 10% a random vocab entry (as GR's vocab_words[randint]).
    u = gen.random(len(rows))
    random_words = self.vocab_word_ids[gen.integers(0, len(self.vocab_word_ids), len(rows))]
    tokens[rows, cols] = np.where(u < 0.8, self.mask_id, np.where(u < 0.9, originals, random_words))
    masked_lm_positions = np.zeros((n, p), np.int32)
    masked_lm_ids = np.zeros((n, p), np.int32)
    masked_lm_positions[rows, rank] = cols
    masked_lm_ids[rows, rank] = originals
    return self._serialize(tokens, length, num_a, masked_lm_positions, masked_lm_ids, k,
                           is_random_next, frame)

  def _select(self, tokens, cand, num_to_predict, gen):
    """GR's masked position choice: [N, S] bool, at most num_to_predict per row.

    GR shuffles the candidates and takes them in order; here each candidate gets a uniform key
    and the smallest keys win, which is the same distribution.
    """
    np = _np()
    n, s = tokens.shape
    rows = np.arange(n)[:, None]
    if not self.do_whole_word_mask:
      keys = gen.random((n, s), dtype=np.float32)
      keys[~cand] = 2.0
      kp = min(self.max_predictions_per_seq, s - 1)
      part = np.argpartition(keys, kp - 1, axis=1)[:, :kp]               # [N, kp] smallest keys
      take = np.minimum(num_to_predict, cand.sum(axis=1))
      chosen_keys = keys[rows, part]
      order = part[rows, np.argsort(chosen_keys, axis=1)]                # ascending keys
      selected = np.zeros((n, s), bool)
      selected[rows, order] = np.arange(kp)[None, :] < take[:, None]
      return selected
    # Whole words: a "##" piece joins the previous candidate's word (even across [SEP], as GR).
    start = cand & ~(self.is_continuation[tokens] & (np.arange(s) > 1)[None, :])
    word = np.maximum(np.cumsum(start, axis=1) - 1, 0)                     # word index [N, S]
    n_words = start.sum(axis=1)
    keys = gen.random((n, s), dtype=np.float32)
    keys[np.arange(s)[None, :] >= n_words[:, None]] = 2.0                  # no such word: last
    order = np.argsort(keys, axis=1)                                       # [N, S] word ids
    word_len = np.bincount((rows * s + word)[cand], minlength=n * s).reshape(n, s)
    lens = np.take_along_axis(word_len, order, axis=1)
    chosen = np.zeros((n, s), bool)
    total = np.zeros(n, np.int64)
    for r in range(s):
      # GR: stop at num_to_predict; skip a word that would overflow it.
      live = (r < n_words) & (total < num_to_predict)
      if not live.any():
        break
      ok = live & (total + lens[:, r] <= num_to_predict)
      chosen[rows[:, 0], order[:, r]] = ok
      total += np.where(ok, lens[:, r], 0)
    return cand & np.take_along_axis(chosen, word, axis=1)

  def _serialize(self, tokens, length, num_a, positions, ids, k, is_random_next, frame):
    """Per-row arrays -> list of serialized Examples (TFRecord-framed if `frame`).

    numpy builds every payload; Python only joins ~10 byte strings per record.
    """
    np = _np()
    n, s = tokens.shape
    p = self.max_predictions_per_seq
    # Packed varints of each row, as bytes + per-row offsets.
    ids_data, ids_len = self.varint.rows(tokens)
    mid_data, mid_len = self.varint.rows(ids)
    pos_data, pos_len = self.varint.rows(positions)
    col = np.arange(s)[None, :]
    in_seq = col < length[:, None]
    # Fixed-width parts: input_mask entry (between input_ids and masked_lm_ids), and the tail
    # (masked_lm_weights, next_sentence_labels, segment_ids entries).
    head = self._head
    mask_block = np.concatenate([
        np.broadcast_to(np.frombuffer(head["input_mask"], np.uint8), (n, len(head["input_mask"]))),
        in_seq.astype(np.uint8)], axis=1)
    weights = np.where(np.arange(p)[None, :] < k[:, None], np.float32(1.0), np.float32(0.0))
    tail_block = np.concatenate([
        np.broadcast_to(np.frombuffer(head["masked_lm_weights"], np.uint8),
                        (n, len(head["masked_lm_weights"]))),
        weights.astype("<f4").view(np.uint8),
        np.broadcast_to(np.frombuffer(head["next_sentence_labels"], np.uint8),
                        (n, len(head["next_sentence_labels"]))),
        is_random_next.astype(np.uint8)[:, None],
        np.broadcast_to(np.frombuffer(head["segment_ids"], np.uint8),
                        (n, len(head["segment_ids"]))),
        (in_seq & (col >= num_a[:, None])).astype(np.uint8)], axis=1)
    mw, tw = mask_block.shape[1], tail_block.shape[1]
    mask_bytes, tail_bytes = mask_block.tobytes(), tail_block.tobytes()
    ids_bytes, mid_bytes, pos_bytes = ids_data.tobytes(), mid_data.tobytes(), pos_data.tobytes()
    cum = lambda l: [0, *np.cumsum(l).tolist()]
    ids_off, mid_off, pos_off = cum(ids_len), cum(mid_len), cum(pos_len)
    h_ids, h_mid, h_pos, h_body = (self._entry_head["input_ids"], self._entry_head["masked_lm_ids"],
                                   self._entry_head["masked_lm_positions"], self._body_head)
    records = []
    append = records.append
    join = b"".join
    if frame:
      import google_crc32c  # pylint: disable=import-outside-toplevel
      crc32c, pack_crc, frame_head = google_crc32c.value, struct.Struct("<I").pack, self._frame_head
    for i in range(n):
      a0, a1, b0, b1, c0, c1 = ids_off[i], ids_off[i + 1], mid_off[i], mid_off[i + 1], \
          pos_off[i], pos_off[i + 1]
      body = join((h_ids[a1 - a0], ids_bytes[a0:a1], mask_bytes[i * mw:(i + 1) * mw],
                   h_mid[b1 - b0], mid_bytes[b0:b1], h_pos[c1 - c0], pos_bytes[c0:c1],
                   tail_bytes[i * tw:(i + 1) * tw]))
      record = h_body[len(body)] + body
      if frame:  # TFRecord: length, its masked crc32c (cached per length), data, masked crc32c
        crc = crc32c(record)
        record = join((frame_head[len(record)], record,
                       pack_crc((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)))
      append(record)
    return records

  def chunk_spans(self, documents_ids, dupe_factor, seed_key):
    """Documents (lists of sentence id lists) -> (flat ids [T] int32, shuffled spans [R, 5]).

    The first of two stages (see `encode_batch`); seed_key: entropy (int or list of ints) of the
    chunk's generators.
    """
    np = _np()
    import itertools  # pylint: disable=import-outside-toplevel
    import random as pyrandom  # pylint: disable=import-outside-toplevel
    sent_lens, doc_count = [], []
    for doc in documents_ids:
      doc_count.append(len(doc))
      sent_lens.extend(map(len, doc))
    sent_starts = [0, *itertools.accumulate(sent_lens)]
    doc_first = [0, *itertools.accumulate(doc_count)][:-1]
    flat = np.fromiter(itertools.chain.from_iterable(itertools.chain.from_iterable(documents_ids)),
                       np.int32, count=sent_starts[-1])
    seq = np.random.SeedSequence(seed_key)
    rng = pyrandom.Random(int(seq.generate_state(2, np.uint64)[0]))
    spans = self.segment(sent_starts, doc_first, doc_count, dupe_factor, rng)
    perm = np.random.Generator(np.random.PCG64(seq)).permutation(len(spans))
    return flat, spans[perm]  # GR shuffles all instances

  def num_batches(self, spans):
    return -(-len(spans) // self.batch_size)

  def encode_batch(self, flat, spans, seed_key, index, frame=False):
    """Records of batch `index` (spans[index * batch_size:][:batch_size]) as a list of bytes.

    Each batch draws from its own generator (seed_key, index), so batches are independent work
    units: a chunk's batches can go to different workers and the records stay the same.
    """
    np = _np()
    seq = np.random.SeedSequence(seed_key, spawn_key=(index,))
    gen = np.random.Generator(np.random.PCG64(seq))
    lo = index * self.batch_size
    return self.encode(flat, spans[lo:lo + self.batch_size], gen, frame)

  def chunk_records(self, documents_ids, dupe_factor, seed_key, frame=False):
    """Documents -> the chunk's shuffled records (list of bytes): both stages in one process.

    frame=True: each record in TFRecord framing (length, masked crc32c of it, data, masked crc32c
    of data).
    """
    flat, spans = self.chunk_spans(documents_ids, dupe_factor, seed_key)
    records = []
    for index in range(self.num_batches(spans)):
      records.extend(self.encode_batch(flat, spans, seed_key, index, frame))
    return records
