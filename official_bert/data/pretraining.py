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


def iter_documents(input_files, tokenize_to_ids):
  """Yields GR's documents: lists of sentences, each a list of token ids.

  GR's input rules: one sentence per line, a blank line ends a document (documents continue across
  files, as in GR), lines decode as utf-8 dropping invalid bytes, lines with no tokens are dropped,
  documents with no sentences are skipped.
  """
  doc = []
  for path in input_files:
    for raw in iter_lines(path):
      line = raw.decode("utf-8", "ignore").strip()
      if not line:
        if doc:
          yield doc
        doc = []
        continue
      ids = tokenize_to_ids(line)
      if ids:
        doc.append(ids)
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
