"""GR's input rules and instance logic of create_pretraining_data.py, on token ids.

`iter_documents` reads GR's input format; `InstanceMaker` is GR's create_instances_from_document +
create_masked_lm_predictions drawing from one `random.Random` exactly as GR does (same calls, same
order), so the compat pipeline reproduces GR's records. Records are serialized at once
(`wire_format.ExampleEncoder`).
"""

from official_bert.data import wire_format

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


def iter_documents(input_files, tokenize_to_ids, batch=False, on_bytes=None):
  """Yields GR's documents: lists of sentences, each a list of token ids.

  GR's input rules: one sentence per line, a blank line ends a document (documents continue across
  files, as in GR), lines decode as utf-8 dropping invalid bytes, lines with no tokens are dropped,
  documents with no sentences are skipped. batch=True: `tokenize_to_ids` takes the list of a
  document's lines (e.g. FullTokenizer.convert_batch_to_ids), which is much faster.
  on_bytes(n): called after each document with the input bytes read so far (for progress).
  """
  def finish(lines):
    ids = tokenize_to_ids(lines) if batch else map(tokenize_to_ids, lines)
    return [s for s in ids if s]

  lines = []
  read = 0
  for path in input_files:
    for raw in iter_lines(path):
      read += len(raw)
      line = raw.decode("utf-8", "ignore").strip()
      if line:
        lines.append(line)
        continue
      doc = finish(lines)
      lines = []
      if on_bytes:
        on_bytes(read)
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
    self.encoder = wire_format.ExampleEncoder(max_seq_length, max_predictions_per_seq, size)

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

  def instances_from_documents(self, all_documents, dupe_factor, rng, on_document=None):
    """GR's loop: dupe_factor passes over all documents, then one shuffle of all instances.

    on_document(documents done, instances so far): called after each document (for progress).
    """
    records = []
    done = 0
    for _ in range(dupe_factor):
      for document_index in range(len(all_documents)):
        self.instances_from_document(all_documents, document_index, rng, records)
        done += 1
        if on_document:
          on_document(done, len(records))
    rng.shuffle(records)
    return records

