"""Drivers for pre-training data: GR-compatible (one process) and scale (streamed, multi-core).

Both use `official_bert.data.pretraining.InstanceMaker` for every instance, so the rules are GR's.

compat: GR's exact records. GR must see every document before the first instance (it shuffles the
  documents, draws random "next sentences" from the whole corpus and shuffles all instances), so
  documents are held in memory, but as token ids, and instances as serialized bytes (~5x smaller
  than GR's token-string objects).
scale: documents stream through in chunks of ~`chunk_chars` characters (smaller at the start and
  end of the input); a worker tokenizes a chunk, expands it `dupe_factor` times and shuffles the
  instances with the chunk's seeded rng (random next sentences come from the same chunk), then all
  workers encode its batches of records, each batch with its own seeded generator. Memory is
  bounded by the chunks in flight (a few per worker), not by the corpus. Output depends only on
  (inputs, seed, chunk_chars, shards), not on the worker count.
"""

import collections
import contextlib
import gc
import hashlib
import itertools
import multiprocessing
import os
import random
import shutil
import tempfile

from absl import logging
import numpy as np

from official_bert import tokenization
from official_bert import utils
from official_bert.data import pretraining

# Defaults mirror GR's flags.
Options = collections.namedtuple("Options", [
    "vocab_file", "do_lower_case", "do_whole_word_mask", "max_seq_length",
    "max_predictions_per_seq", "random_seed", "dupe_factor", "masked_lm_prob", "short_seq_prob"])


def make_options(vocab_file, do_lower_case=True, do_whole_word_mask=False, max_seq_length=128,
                 max_predictions_per_seq=20, random_seed=12345, dupe_factor=10,
                 masked_lm_prob=0.15, short_seq_prob=0.1):
  return Options(vocab_file, do_lower_case, do_whole_word_mask, max_seq_length,
                 max_predictions_per_seq, random_seed, dupe_factor, masked_lm_prob,
                 short_seq_prob)


def build(options, maker_class=None):
  """(tokenizer, instance maker) for `options`: GR's InstanceMaker by default, or the
  vectorised pretraining.ChunkInstanceMaker of scale mode."""
  tokenizer = tokenization.FullTokenizer(options.vocab_file, options.do_lower_case,
                                         required_tokens=tokenization.PRETRAINING_TOKENS)
  maker = (maker_class or pretraining.InstanceMaker)(
      tokenizer.vocab, max_seq_length=options.max_seq_length,
      short_seq_prob=options.short_seq_prob, masked_lm_prob=options.masked_lm_prob,
      max_predictions_per_seq=options.max_predictions_per_seq,
      do_whole_word_mask=options.do_whole_word_mask)
  return tokenizer, maker


def log_example(record, tokenizer):
  """GR's log of one example: its tokens, then each feature's values."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  example = tf.train.Example.FromString(record)
  feature = example.features.feature
  n = sum(feature["input_mask"].int64_list.value)
  tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"].int64_list.value[:n])
  logging.info("*** Example ***")
  logging.info("tokens: %s", " ".join(tokenization.printable_text(x) for x in tokens))
  for name in pretraining.FEATURE_NAMES:
    f = feature[name]
    values = f.int64_list.value or f.float_list.value
    logging.info("%s: %s", name, " ".join(str(x) for x in values))


class ShardWriter(object):
  """Writes records round-robin to TFRecord files under temporary names; renames on close()."""

  def __init__(self, output_files):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    self._stack = contextlib.ExitStack()
    self._writers = []
    for path in output_files:
      tmp = self._stack.enter_context(utils.atomic_path(path))
      self._writers.append(tf.io.TFRecordWriter(tmp))
    self.count = 0

  def write(self, record):
    self._writers[self.count % len(self._writers)].write(record)
    self.count += 1

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    for w in self._writers:
      w.close()
    # Renames the temporary files only if no exception (atomic_path); removes them otherwise.
    return self._stack.__exit__(*exc)


def _log_outputs(output_files):
  logging.info("*** Writing to output files ***")
  for path in output_files:
    logging.info("  %s", path)


def run_compat(input_files, output_files, options, num_logged=20):
  """GR's create_pretraining_data: same records in the same order. Returns the count."""
  tokenizer, maker = build(options)
  logging.info("*** Reading from input files ***")
  for path in input_files:
    logging.info("  %s", path)
  rng = random.Random(options.random_seed)
  documents = list(pretraining.iter_documents(input_files, tokenizer.convert_batch_to_ids,
                                                batch=True))
  rng.shuffle(documents)
  records = maker.instances_from_documents(documents, options.dupe_factor, rng)
  del documents
  _log_outputs(output_files)
  with ShardWriter(output_files) as writer:
    for i, record in enumerate(records):
      writer.write(record)
      if i < num_logged:
        log_example(record, tokenizer)
  logging.info("Wrote %d total instances", writer.count)
  return writer.count


# ----------------------------------------------------------------------------------------------
# Scale mode
# ----------------------------------------------------------------------------------------------


def _file_size(path):
  if "://" not in path:
    return os.path.getsize(path)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.gfile.stat(path).length


def iter_chunks(input_files, chunk_chars, taper=False):
  """Documents (lists of stripped, non-empty lines) grouped into chunks of ~chunk_chars chars.

  taper=True (guided scheduling): the first chunk and the chunks of the input's last few MiB are
  smaller, down to chunk_chars / 8, so a pool of workers starts sooner and finishes together
  instead of waiting on one worker's last full chunk. The plan depends on the input sizes
  only, never on the worker count.
  """
  smallest = max(1, chunk_chars // 8)
  remaining = sum(_file_size(p) for p in input_files) if taper else 0

  def target(first):
    if not taper:
      return chunk_chars
    return smallest if first else min(chunk_chars, max(smallest, remaining // 4))

  chunk, size, doc = [], 0, []
  goal = target(True)
  for path in input_files:
    for raw in pretraining.iter_lines(path):
      remaining -= len(raw)
      line = raw.decode("utf-8", "ignore").strip()
      if line:
        doc.append(line)
        size += len(line)
        continue
      if doc:
        chunk.append(doc)
        doc = []
        if size >= goal:
          yield chunk
          chunk, size = [], 0
          goal = target(False)
  if doc:
    chunk.append(doc)
  if chunk:
    yield chunk


def chunk_seed(seed, chunk_key):
  """Entropy of one chunk's generators: a function of (seed, chunk key) only."""
  digest = hashlib.sha256(str(chunk_key).encode()).digest()
  return [seed % (1 << 64), int.from_bytes(digest[:16], "little")]


def build_scale(options):
  """(tokenizer, ChunkInstanceMaker) for `options`."""
  return build(options, pretraining.ChunkInstanceMaker)


def tokenize_chunk(chunk, tokenizer):
  """Raw documents of one chunk -> token-id documents (lists of non-empty sentence id lists)."""
  lines = [line for doc in chunk for line in doc]
  ids = iter(tokenizer.convert_batch_to_ids(lines))
  documents = []
  for doc in chunk:
    sentences = [s for s in itertools.islice(ids, len(doc)) if s]
    if sentences:
      documents.append(sentences)
  return documents


def process_chunk(chunk_key, chunk, tokenizer, maker, options, frame=False):
  """Raw documents of one chunk -> its shuffled serialized tf.train.Examples (list of bytes).

  frame=True: each record in TFRecord framing, ready to be appended to a .tfrecord file.
  """
  return _chunk_records(chunk_key, tokenize_chunk(chunk, tokenizer), maker, options, frame)


def _chunk_records(chunk_key, documents, maker, options, frame):
  if not documents:
    return []
  return maker.chunk_records(documents, options.dupe_factor,
                             chunk_seed(options.random_seed, chunk_key), frame=frame)


def pack_records(records, num_shards, num_head=0):
  """One chunk's framed records -> (count, blobs, head) for FramedShardWriter.write.

  blobs[k] joins records k, k + n, k + 2n, ... (n = num_shards): they share a shard whatever the
  records written before. head: the first num_head records (for the log).
  """
  return len(records), [b"".join(records[k::num_shards]) for k in range(num_shards)], \
      records[:num_head]


_WORKER = {}


def _spans_in_worker(args):
  """Stage 1, in a forked worker (tokenizer and maker built by the parent before the fork): one
  chunk (raw documents, or token-id documents if `tokenized`) -> its ids and shuffled spans in a
  local file: (chunk_index, path, number of ids, number of batches).

  Stage 2 (`_batch_in_worker`) encodes the chunk's batches on all workers at once, so the pool
  does not wait on one worker's last big chunk (a whole book is one document)."""
  chunk_index, chunk, tokenized = args
  documents = chunk if tokenized else tokenize_chunk(chunk, _WORKER["tokenizer"])
  if not documents:
    return chunk_index, None, 0, 0
  options, maker = _WORKER["options"], _WORKER["maker"]
  flat, spans = maker.chunk_spans(documents, options.dupe_factor,
                                  chunk_seed(options.random_seed, chunk_index))
  path = os.path.join(_WORKER["spill_dir"], f"spans-{chunk_index}")
  with open(path, "wb") as f:
    f.write(flat.tobytes())
    f.write(spans.astype(np.int64, copy=False).tobytes())  # read back as int64
  return chunk_index, path, len(flat), maker.num_batches(spans)


def _batch_in_worker(args):
  """Stage 2: batches [first, last) of a chunk's spans -> their packed records (pack_records),
  the blobs spilled to a local file: (count, path, blob sizes, head).

  A file, not the result pipe: megabytes of records through a 64 KiB pipe kept each worker
  waiting until the parent had read them all (a quarter of its time, measured)."""
  chunk_index, spans_path, num_ids, first, last = args
  options, maker = _WORKER["options"], _WORKER["maker"]
  flat = np.memmap(spans_path, np.int32, "r", shape=(num_ids,))
  spans = np.memmap(spans_path, np.int64, "r", offset=4 * num_ids).reshape(-1, 5)
  seed = chunk_seed(options.random_seed, chunk_index)
  records = []
  for index in range(first, last):
    records.extend(maker.encode_batch(flat, spans, seed, index, frame=True))
  count, blobs, head = pack_records(records, _WORKER["num_shards"],
                                    _WORKER["num_head"] if first == 0 else 0)
  path = os.path.join(_WORKER["spill_dir"], f"records-{chunk_index}-{first}")
  with open(path, "wb") as f:
    f.writelines(blobs)
  return count, path, [len(b) for b in blobs], head


def _unspill(result):
  """(count, path, sizes, head) from a worker -> pack_records' (count, blobs, head)."""
  count, path, sizes, head = result
  with open(path, "rb") as f:
    data = memoryview(f.read())
  os.remove(path)
  ends = list(itertools.accumulate(sizes))
  return count, [data[e - n:e] for e, n in zip(ends, sizes)], head


class FramedShardWriter(object):
  """Appends TFRecord-framed records round-robin to shards (temporary names, renamed on exit)."""

  def __init__(self, output_files):
    self._stack = contextlib.ExitStack()
    self._files = [
        self._stack.enter_context(utils.open_for_write(
            self._stack.enter_context(utils.atomic_path(path)), "wb"))
        for path in output_files]
    self.count = 0

  def write(self, packed):
    """packed: pack_records(records, len(shards)). Record i of the chunk goes to shard
    (count + i) % n, as ShardWriter."""
    count, blobs, _ = packed
    n = len(self._files)
    for k, blob in enumerate(blobs):
      self._files[(self.count + k) % n].write(blob)
    self.count += count

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    # Files close before their rename (ExitStack unwinds in reverse).
    return self._stack.__exit__(*exc)


def shard_names(output_file, output_shards):
  """out.tfrecord, 4 -> out.tfrecord-00000-of-00004, ..."""
  return [f"{output_file}-{i:05d}-of-{output_shards:05d}" for i in range(output_shards)]


def _run_stages(pool, chunks, write, num_workers):
  """Feeds chunks through the pool's two stages; writes the records in chunk and batch order.

  Stage 1 of the next num_workers chunks runs ahead of stage 2, so no worker idles while a
  chunk is tokenized. Bounded: num_workers + 1 chunks in stage 1 and 4 x num_workers stage-2
  results waiting for the writer, all spilled to local files.
  """
  spans = collections.deque()    # stage-1 results, in chunk order
  batches = collections.deque()  # (stage-2 result, spans file to delete after it), in order

  def to_batches(result):
    chunk_index, path, num_ids, num_batches = result
    # One task per worker: the chunk's encoding runs on every worker at once.
    group = max(1, -(-num_batches // num_workers))
    for first in range(0, num_batches, group):
      last = min(first + group, num_batches)
      batches.append((pool.apply_async(_batch_in_worker,
                                       ((chunk_index, path, num_ids, first, last),)),
                      path if last == num_batches else None))

  def drain(keep):
    while batches and (len(batches) > keep or batches[0][0].ready()):
      result, spans_path = batches.popleft()
      write(_unspill(result.get()))
      if spans_path:  # the chunk's last batch: every batch of it is done
        os.remove(spans_path)

  for item in chunks:
    spans.append(pool.apply_async(_spans_in_worker, (item,)))
    if len(spans) > num_workers:
      to_batches(spans.popleft().get())
    drain(keep=4 * num_workers)
  while spans:
    to_batches(spans.popleft().get())
    drain(keep=4 * num_workers)
  drain(keep=0)


def run_scale(input_files, output_files, options, num_workers=None, chunk_chars=1 << 20,
              num_logged=20):
  """Streamed, parallel, bounded-memory variant. Returns the number of instances written."""
  num_workers = num_workers or os.cpu_count() or 1
  tokenizer, maker = build_scale(options)
  chunks = enumerate(iter_chunks(input_files, chunk_chars, taper=True))
  _log_outputs(output_files)
  logged = 0
  # The heap so far (TensorFlow's modules, the vocab, the tokenizer cache) is long-lived: frozen,
  # the collector stops re-scanning it for every chunk's short-lived records, and forked
  # workers stop touching (so copying) its pages. ~15 % of the CPU time on 2 cores.
  gc.freeze()
  with contextlib.ExitStack() as stack:
    stack.callback(gc.unfreeze)
    writer = stack.enter_context(FramedShardWriter(output_files))

    def write(packed):
      nonlocal logged
      writer.write(packed)
      logging.log_every_n_seconds(logging.INFO, "%d instances written", 30, writer.count)
      for record in packed[2][:max(num_logged - logged, 0)]:
        log_example(record[12:-4], tokenizer)  # framing stripped
        logged += 1

    num_shards = len(output_files)
    if num_workers == 1:
      for chunk_index, chunk in chunks:
        write(pack_records(process_chunk(chunk_index, chunk, tokenizer, maker, options, frame=True),
                           num_shards, num_logged))
    else:
      # The first chunk is tokenized before the fork, so every worker starts with its words in
      # the tokenizer cache instead of meeting each of them again (first sightings cost ~4x).
      # fork: workers inherit the imported modules, tokenizer and maker; they run no TensorFlow.
      first = next(chunks, None)
      if first is not None:
        chunks = itertools.chain([(first[0], tokenize_chunk(first[1], tokenizer), True)],
                                 ((i, chunk, False) for i, chunk in chunks))
      ctx = multiprocessing.get_context("fork")
      spill_dir = tempfile.mkdtemp(prefix="create_pretraining_data-")
      stack.callback(shutil.rmtree, spill_dir, ignore_errors=True)
      _WORKER.update(tokenizer=tokenizer, maker=maker, options=options,
                     num_shards=num_shards, num_head=num_logged, spill_dir=spill_dir)
      gc.freeze()  # again: the first chunk's cache entries
      with ctx.Pool(num_workers) as pool:
        _run_stages(pool, chunks, write, num_workers)
  logging.info("Wrote %d total instances", writer.count)
  return writer.count
