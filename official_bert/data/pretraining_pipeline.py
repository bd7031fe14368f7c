"""Drivers for pre-training data: GR-compatible (one process) and scale (streamed, multi-core).

compat: GR's exact records, from GR's instance logic (`gr_instances.InstanceMaker`, GR's random
  stream). GR must see every document before the first instance (it shuffles the documents, draws
  random "next sentences" from the whole corpus and shuffles all instances), so documents are held
  in memory, but as token ids, and instances as serialized bytes (~5x smaller than GR's
  token-string objects).
scale: GR's rules vectorised per chunk by its own instance maker (`scale_instances.
  ChunkInstanceMaker`, numpy's random stream: statistically GR's records, not byte-identical).
  Documents stream through in chunks of ~`chunk_chars` characters (smaller at the start and end of
  the input); a worker tokenizes a chunk, expands it `dupe_factor` times and shuffles the
  instances with the chunk's seeded rng (random next sentences come from the same chunk), then all
  workers encode its batches of records, each batch with its own seeded generator. Memory is
  bounded by the chunks in flight (a few per worker), not by the corpus. Output depends only on
  (inputs, seed, chunk_chars, shards), not on the worker count.

Neither imports TensorFlow unless a path has a scheme (gs://...): records are serialized and
framed by `wire_format`. Outputs are written under hidden temporary names (`utils.partial_path`)
and renamed at the end; the temporary files and the spill folder go on error and on SIGTERM /
SIGINT (`terminate_on_signals`), and the next run sweeps those a kill -9 left.
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
import signal
import tempfile
import time

from absl import logging

from official_bert import errors
from official_bert import tokenization
from official_bert import utils
from official_bert.data import gr_instances
from official_bert.data import pretraining
from official_bert.data import wire_format

# Defaults mirror GR's flags.
Options = collections.namedtuple("Options", [
    "vocab_file", "do_lower_case", "do_whole_word_mask", "max_seq_length",
    "max_predictions_per_seq", "random_seed", "dupe_factor", "masked_lm_prob", "short_seq_prob"])

SPILL_PREFIX = "create_pretraining_data-"


def make_options(vocab_file, do_lower_case=True, do_whole_word_mask=False, max_seq_length=128,
                 max_predictions_per_seq=20, random_seed=12345, dupe_factor=10,
                 masked_lm_prob=0.15, short_seq_prob=0.1):
  return Options(vocab_file, do_lower_case, do_whole_word_mask, max_seq_length,
                 max_predictions_per_seq, random_seed, dupe_factor, masked_lm_prob,
                 short_seq_prob)


def check_options(options):
  """User errors in `options` (flag names as GR's), before any work."""
  def bad(name, value, fix):
    raise errors.UserError("invalid value", errors.flag(name, value), fix)
  if options.dupe_factor < 1:
    bad("dupe_factor", options.dupe_factor, "give >= 1 (0 would write no instance)")
  if options.max_seq_length < 5:
    bad("max_seq_length", options.max_seq_length,
        "give >= 5 ([CLS] A [SEP] B [SEP] with one token each)")
  if options.max_predictions_per_seq < 1:
    bad("max_predictions_per_seq", options.max_predictions_per_seq, "give >= 1")
  if not 0.0 <= options.masked_lm_prob <= 1.0:
    bad("masked_lm_prob", options.masked_lm_prob, "give a probability in [0, 1]")
  if not 0.0 <= options.short_seq_prob <= 1.0:
    bad("short_seq_prob", options.short_seq_prob, "give a probability in [0, 1]")


def check_outputs(output_files):
  """Output paths that cannot be written fail before the run (local paths)."""
  for path in output_files:
    utils.check_output_file(path)


def build(options, maker_class=None):
  """(tokenizer, instance maker) for `options`: GR's InstanceMaker by default, or the
  vectorised scale_instances.ChunkInstanceMaker of scale mode."""
  tokenizer = tokenization.FullTokenizer(options.vocab_file, options.do_lower_case,
                                         required_tokens=tokenization.PRETRAINING_TOKENS)
  maker = (maker_class or gr_instances.InstanceMaker)(
      tokenizer.vocab, max_seq_length=options.max_seq_length,
      short_seq_prob=options.short_seq_prob, masked_lm_prob=options.masked_lm_prob,
      max_predictions_per_seq=options.max_predictions_per_seq,
      do_whole_word_mask=options.do_whole_word_mask)
  return tokenizer, maker


def log_example(record, tokenizer):
  """GR's log of one example: its tokens, then each feature's values."""
  feature = wire_format.decode_example(record)
  n = sum(feature["input_mask"])
  tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"][:n])
  logging.info("*** Example ***")
  logging.info("tokens: %s", " ".join(tokenization.printable_text(x) for x in tokens))
  for name in pretraining.FEATURE_NAMES:
    logging.info("%s: %s", name, " ".join(str(x) for x in feature[name]))


# ----------------------------------------------------------------------------------------------
# Progress, interruption, leftovers
# ----------------------------------------------------------------------------------------------


def progress_seconds():
  """Seconds between progress lines: $BERT_PROGRESS_SECONDS, else 10."""
  return float(os.environ.get("BERT_PROGRESS_SECONDS", "10"))


class Progress(object):
  """Logs `what: done / total unit, rate, elapsed, ETA` at most every progress_seconds()."""

  def __init__(self, what, unit, total=None):
    self.what, self.unit, self.total = what, unit, total
    self.start = self._last = time.monotonic()
    self.interval = progress_seconds()

  def update(self, done, extra=""):
    now = time.monotonic()
    if now - self._last < self.interval:
      return
    self._last = now
    elapsed = max(now - self.start, 1e-9)
    rate = done / elapsed
    text = f"{self.what}: {done:,}"
    if self.total:
      text += f" / {self.total:,} {self.unit} ({100.0 * done / self.total:.1f}%)"
    else:
      text += f" {self.unit}"
    text += f", {rate:,.0f} {self.unit}/s, elapsed {_hms(elapsed)}"
    if self.total and done:
      text += f", ETA {_hms(elapsed * (self.total - done) / done)}"
    logging.info("%s%s", text, f", {extra}" if extra else "")


def _hms(seconds):
  seconds = int(round(seconds))
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@contextlib.contextmanager
def terminate_on_signals():
  """SIGTERM raises SystemExit(143) in the main thread, so context managers remove partial
  outputs and the spill folder as they do on error or Ctrl-C (KeyboardInterrupt)."""
  def handler(signum, _):
    logging.warning("Stopped by signal %d: removing partial outputs", signum)
    raise SystemExit(128 + signum)
  previous = signal.signal(signal.SIGTERM, handler)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)


def sweep_leftovers(output_files):
  """Removes partial outputs and spill folders of runs that were killed (kill -9)."""
  utils.sweep_partials(output_files)
  tmp = tempfile.gettempdir()
  for entry in os.listdir(tmp):
    pid = entry[len(SPILL_PREFIX):].split("-")[0]
    if entry.startswith(SPILL_PREFIX) and pid.isdigit() and not utils.pid_alive(int(pid)):
      shutil.rmtree(os.path.join(tmp, entry), ignore_errors=True)
      logging.warning("Removed %s, the spill folder of an interrupted run",
                      os.path.join(tmp, entry))


def _no_text(input_files):
  return errors.UserError("no text in the input", ", ".join(input_files),
                          "give files with one sentence per line (blank line between documents)")


class ShardWriter(object):
  """Writes records round-robin to TFRecord files under temporary names; renames on close()."""

  def __init__(self, output_files):
    self._stack = contextlib.ExitStack()
    self._files = [
        self._stack.enter_context(utils.open_for_write(
            self._stack.enter_context(utils.atomic_path(path)), "wb"))
        for path in output_files]
    self.count = 0

  def write(self, record):
    self._files[self.count % len(self._files)].write(wire_format.frame(record))
    self.count += 1

  def write_packed(self, packed):
    """packed: pack_records(framed records, len(shards)). Record i of the chunk goes to shard
    (count + i) % n, as write()."""
    count, blobs, _ = packed
    n = len(self._files)
    for k, blob in enumerate(blobs):
      self._files[(self.count + k) % n].write(blob)
    self.count += count

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    # Files close before their rename (ExitStack unwinds in reverse); on an exception the
    # temporary files are removed (atomic_path).
    return self._stack.__exit__(*exc)


def _log_outputs(output_files):
  logging.info("*** Writing to output files ***")
  for path in output_files:
    logging.info("  %s", path)


def _file_size(path):
  if "://" not in path:
    return os.path.getsize(path)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.gfile.stat(path).length


def run_compat(input_files, output_files, options, num_logged=20):
  """GR's create_pretraining_data: same records in the same order. Returns the count."""
  check_options(options)
  tokenizer, maker = build(options)
  logging.info("*** Reading from input files ***")
  for path in input_files:
    logging.info("  %s", path)
  rng = random.Random(options.random_seed)
  reading = Progress("Reading input", "bytes", sum(_file_size(p) for p in input_files))
  documents = []
  for doc in gr_instances.iter_documents(
      input_files, tokenizer.convert_batch_to_ids, batch=True,
      on_bytes=lambda n: reading.update(n, f"{len(documents):,} documents")):
    documents.append(doc)
  if not documents:
    raise _no_text(input_files)
  rng.shuffle(documents)
  making = Progress("Creating instances", "documents", options.dupe_factor * len(documents))
  records = maker.instances_from_documents(
      documents, options.dupe_factor, rng,
      on_document=lambda d, n: making.update(d, f"{n:,} instances"))
  del documents
  _log_outputs(output_files)
  writing = Progress("Writing", "instances", len(records))
  with ShardWriter(output_files) as writer:
    for i, record in enumerate(records):
      writer.write(record)
      if i < num_logged:
        log_example(record, tokenizer)
      if not (i + 1) & 255:
        writing.update(i + 1)
  logging.info("Wrote %d total instances", writer.count)
  return writer.count


# ----------------------------------------------------------------------------------------------
# Scale mode
# ----------------------------------------------------------------------------------------------


def iter_chunks(input_files, chunk_chars, taper=False, on_bytes=None):
  """Documents (lists of stripped, non-empty lines) grouped into chunks of ~chunk_chars chars.

  taper=True (guided scheduling): the first chunk and the chunks of the input's last few MiB are
  smaller, down to chunk_chars / 8, so a pool of workers starts sooner and finishes together
  instead of waiting on one worker's last full chunk. The plan depends on the input sizes
  only, never on the worker count. on_bytes(n): called before each chunk is yielded with the
  input bytes read so far.
  """
  smallest = max(1, chunk_chars // 8)
  remaining = sum(_file_size(p) for p in input_files) if taper else 0
  read = 0

  def target(first):
    if not taper:
      return chunk_chars
    return smallest if first else min(chunk_chars, max(smallest, remaining // 4))

  chunk, size, doc = [], 0, []
  goal = target(True)
  for path in input_files:
    for raw in gr_instances.iter_lines(path):
      remaining -= len(raw)
      read += len(raw)
      line = raw.decode("utf-8", "ignore").strip()
      if line:
        doc.append(line)
        size += len(line)
        continue
      if doc:
        chunk.append(doc)
        doc = []
        if size >= goal:
          if on_bytes:
            on_bytes(read)
          yield chunk
          chunk, size = [], 0
          goal = target(False)
  if doc:
    chunk.append(doc)
  if chunk:
    if on_bytes:
      on_bytes(read)
    yield chunk


def chunk_seed(seed, chunk_key):
  """Entropy of one chunk's generators: a function of (seed, chunk key) only."""
  digest = hashlib.sha256(str(chunk_key).encode()).digest()
  return [seed % (1 << 64), int.from_bytes(digest[:16], "little")]


def build_scale(options):
  """(tokenizer, ChunkInstanceMaker) for `options`."""
  # Imported here: numpy is scale mode's alone, compat mode starts faster without it.
  from official_bert.data import scale_instances  # pylint: disable=import-outside-toplevel
  return build(options, scale_instances.ChunkInstanceMaker)


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
  documents = tokenize_chunk(chunk, tokenizer)
  if not documents:
    return []
  return maker.chunk_records(documents, options.dupe_factor,
                             chunk_seed(options.random_seed, chunk_key), frame=frame)


def pack_records(records, num_shards, num_head=0):
  """One chunk's framed records -> (count, blobs, head) for ShardWriter.write_packed.

  blobs[k] joins records k, k + n, k + 2n, ... (n = num_shards): they share a shard whatever the
  records written before. head: the first num_head records (for the log).
  """
  return len(records), [b"".join(records[k::num_shards]) for k in range(num_shards)], \
      records[:num_head]


_WORKER = {}


def _worker_init():
  # The parent cleans up; a worker just dies on SIGTERM (Pool.terminate) and leaves Ctrl-C,
  # which the terminal sends to the whole group, to the parent.
  signal.signal(signal.SIGTERM, signal.SIG_DFL)
  signal.signal(signal.SIGINT, signal.SIG_IGN)


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
  import numpy as np  # pylint: disable=import-outside-toplevel
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
  import numpy as np  # pylint: disable=import-outside-toplevel
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


def shard_names(output_file, output_shards):
  """out.tfrecord, 4 -> out.tfrecord-00000-of-00004, ..."""
  return [f"{output_file}-{i:05d}-of-{output_shards:05d}" for i in range(output_shards)]


def _run_stages(pool, chunks, write, num_workers, chunk_done):
  """Feeds chunks through the pool's two stages; writes the records in chunk and batch order,
  calling chunk_done(chunk_index) when a chunk's last records are written.

  Stage 1 of the next num_workers chunks runs ahead of stage 2, so no worker idles while a
  chunk is tokenized. Bounded: num_workers + 1 chunks in stage 1 and 4 x num_workers stage-2
  results waiting for the writer, all spilled to local files.
  """
  spans = collections.deque()    # stage-1 results, in chunk order
  batches = collections.deque()  # (stage-2 result, chunk index if its last), in order

  def to_batches(result):
    chunk_index, path, num_ids, num_batches = result
    if not num_batches:
      chunk_done(chunk_index)
      return
    # One task per worker: the chunk's encoding runs on every worker at once.
    group = max(1, -(-num_batches // num_workers))
    for first in range(0, num_batches, group):
      last = min(first + group, num_batches)
      batches.append((pool.apply_async(_batch_in_worker,
                                       ((chunk_index, path, num_ids, first, last),)),
                      (chunk_index, path) if last == num_batches else None))

  def drain(keep):
    while batches and (len(batches) > keep or batches[0][0].ready()):
      result, last = batches.popleft()
      write(_unspill(result.get()))
      if last:  # the chunk's last batch: every batch of it is done
        os.remove(last[1])
        chunk_done(last[0])

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
  check_options(options)
  num_workers = num_workers or os.cpu_count() or 1
  tokenizer, maker = build_scale(options)
  total_bytes = sum(_file_size(p) for p in input_files)
  if total_bytes <= chunk_chars // 8:  # one (tapered) chunk: a pool would only cost its start-up
    num_workers = 1
  progress = Progress("Input done", "bytes", total_bytes)
  chunk_end = []  # chunk index -> input bytes read when it was cut
  chunks = enumerate(iter_chunks(input_files, chunk_chars, taper=True, on_bytes=chunk_end.append))
  _log_outputs(output_files)
  logged = 0
  # The heap so far (modules, the vocab, the tokenizer cache) is long-lived: frozen, the
  # collector stops re-scanning it for every chunk's short-lived records, and forked workers stop
  # touching (so copying) its pages. ~15 % of the CPU time on 2 cores.
  gc.freeze()
  with contextlib.ExitStack() as stack:
    stack.callback(gc.unfreeze)
    writer = stack.enter_context(ShardWriter(output_files))

    def write(packed):
      nonlocal logged
      writer.write_packed(packed)
      for record in packed[2][:max(num_logged - logged, 0)]:
        log_example(record[12:-4], tokenizer)  # framing stripped
        logged += 1

    def chunk_done(chunk_index):
      progress.update(chunk_end[chunk_index], f"{writer.count:,} instances written")

    num_shards = len(output_files)
    if num_workers == 1:
      for chunk_index, chunk in chunks:
        write(pack_records(process_chunk(chunk_index, chunk, tokenizer, maker, options, frame=True),
                           num_shards, num_logged))
        chunk_done(chunk_index)
    else:
      # The first chunk is tokenized before the fork, so every worker starts with its words in
      # the tokenizer cache instead of meeting each of them again (first sightings cost ~4x).
      # fork: workers inherit the imported modules, tokenizer and maker.
      first = next(chunks, None)
      if first is not None:
        chunks = itertools.chain([(first[0], tokenize_chunk(first[1], tokenizer), True)],
                                 ((i, chunk, False) for i, chunk in chunks))
      ctx = multiprocessing.get_context("fork")
      # The pid in the name lets the next run sweep the folder if this one is killed (-9).
      spill_dir = tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-")
      stack.callback(shutil.rmtree, spill_dir, ignore_errors=True)
      _WORKER.update(tokenizer=tokenizer, maker=maker, options=options,
                     num_shards=num_shards, num_head=num_logged, spill_dir=spill_dir)
      gc.freeze()  # again: the first chunk's cache entries
      with ctx.Pool(num_workers, initializer=_worker_init) as pool:
        _run_stages(pool, chunks, write, num_workers, chunk_done)
    if not writer.count:
      raise _no_text(input_files)
  logging.info("Wrote %d total instances", writer.count)
  return writer.count
