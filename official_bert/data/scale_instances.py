"""Scale mode's instance maker: GR's rules, vectorised over a whole chunk with numpy.

Not GR's random stream (see `ChunkInstanceMaker`); records are canonical: the bytes
`wire_format.ExampleEncoder` would write, optionally in TFRecord framing.
Dimension legend: S = max_seq_length, P = max_predictions_per_seq, N = instances in a batch,
W = values per row, R = records.
"""

import bisect
import itertools
import random as pyrandom
import struct

import numpy as np

from official_bert.data import wire_format


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
    enc = wire_format.ExampleEncoder(s, p, 1)  # for its headers only: no per-id varint table
    # Constant pieces of a record (see ExampleEncoder).
    self._head = enc.fixed_headers
    self.varint = wire_format.VarintTable(max(size, 1 << 14))
    # Header bytes before a payload of length L, per variable-length feature and for the body.
    self._entry_head = {name: _Headers(lambda l, name=name: enc.entry_header(name, l))
                        for name in ("input_ids", "masked_lm_ids", "masked_lm_positions")}
    self._body_head = _Headers(lambda l: b"\x0a" + wire_format.varint(l))
    self._frame_head = _Headers(wire_format.frame_header)

  # -- segmentation (per sentence, Python; no per-token work) ------------------------------------

  def segment(self, sent_starts, doc_first, doc_count, dupe_factor, rng):
    """GR's create_instances_from_document on sentence offsets, for every document, dupe times.

    sent_starts: [num_sentences + 1] token offsets (list); documents are runs of sentences.
    Returns int64 [R, 5]: a_lo, a_hi, b_lo, b_hi (token offsets) and is_random_next.
    """
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
      crc32c, pack_crc, frame_head = (wire_format.masked_crc32c, struct.Struct("<I").pack,
                                      self._frame_head)
    for i in range(n):
      a0, a1, b0, b1, c0, c1 = ids_off[i], ids_off[i + 1], mid_off[i], mid_off[i + 1], \
          pos_off[i], pos_off[i + 1]
      body = join((h_ids[a1 - a0], ids_bytes[a0:a1], mask_bytes[i * mw:(i + 1) * mw],
                   h_mid[b1 - b0], mid_bytes[b0:b1], h_pos[c1 - c0], pos_bytes[c0:c1],
                   tail_bytes[i * tw:(i + 1) * tw]))
      record = h_body[len(body)] + body
      if frame:  # TFRecord: length, its masked crc32c (cached per length), data, masked crc32c
        record = join((frame_head[len(record)], record, pack_crc(crc32c(record))))
      append(record)
    return records

  def chunk_spans(self, documents_ids, dupe_factor, seed_key):
    """Documents (lists of sentence id lists) -> (flat ids [T] int32, shuffled spans [R, 5]).

    The first of two stages (see `encode_batch`); seed_key: entropy (int or list of ints) of the
    chunk's generators.
    """
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

