"""Tokenization throughput and identity vs GR's FullTokenizer, all measured in one run.

Example:
  python benchmarks/tokenization_bench.py \\
    --input_file=../shared/data/wikipedia_sample/wiki_00 \\
    --vocab_file=../shared/data/vocab/bert-base-uncased-vocab.txt --do_lower_case=true

Prints MB/s (utf-8 input bytes per CPU second of this process) of GR's FullTokenizer, our plain Python
path, our fast batch path (a fresh tokenizer, whose cache holds only the vocab, so every new token is
paid for; then again with the warm cache), our in-graph layer and HF `tokenizers`'
BertWordPieceTokenizer if installed; each as a ratio to GR; and the share of lines whose ids equal
GR's. The last line is `fast_vs_gr_speedup=<x> identical=<pct>`.
"""

import gc
import importlib.util
import os
import time

from absl import app
from absl import flags

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_string("input_file", None, "Text file to tokenize, one text per line.")
flags.DEFINE_string("vocab_file", None, "WordPiece vocab file.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case and strip accents (uncased models).")
flags.DEFINE_integer("max_bytes", 0, "If > 0, only the first max_bytes of the file are used.")
flags.DEFINE_bool("in_graph", True, "Also time the in-graph BertTokenizerLayer.")
flags.DEFINE_integer("graph_batch_size", 1024, "Lines per batch for the in-graph layer.")


def _timed(fn):
  """(fn(), CPU seconds of this process). CPU time, not wall time: the machine may be shared.

  The garbage collector is paused while timing (for every path alike): the results of earlier
  paths are millions of live objects that a full collection would rescan.
  """
  gc.collect()
  gc.disable()
  try:
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start
  finally:
    gc.enable()


def _identical(got, expected):
  return 100.0 * sum(a == b for a, b in zip(got, expected)) / max(1, len(expected))


def _load_gr_reference():
  """tests/gr_reference.py (GR's code as the reference), loaded by path."""
  spec = importlib.util.spec_from_file_location(
      "gr_reference", os.path.join(_ROOT, "tests", "gr_reference.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  gr_reference = _load_gr_reference()
  from official_bert import tokenization  # pylint: disable=import-outside-toplevel
  from official_bert.layers import preprocessing  # pylint: disable=import-outside-toplevel

  with tf.io.gfile.GFile(FLAGS.input_file, "rb") as f:
    raw = f.read()
  if FLAGS.max_bytes > 0:
    raw = raw[:FLAGS.max_bytes]
  text = raw.decode("utf-8", "ignore")  # what GR's convert_to_unicode makes of the bytes
  lines = text.split("\n")
  mb = len(text.encode("utf-8")) / 1e6
  print(f"input={FLAGS.input_file} MB={mb:.3f} lines={len(lines)} "
        f"do_lower_case={FLAGS.do_lower_case}")

  gr = gr_reference.load_gr_module("tokenization")
  gr_tok = gr.FullTokenizer(FLAGS.vocab_file, FLAGS.do_lower_case)
  expected, t_gr = _timed(lambda: [gr_tok.convert_tokens_to_ids(gr_tok.tokenize(l))
                                   for l in lines])
  results = [("gr_full_tokenizer", t_gr, 100.0)]

  ours = tokenization.FullTokenizer(FLAGS.vocab_file, FLAGS.do_lower_case)
  got, t = _timed(lambda: [ours.convert_tokens_to_ids(ours.tokenize_uncached(l)) for l in lines])
  results.append(("ours_python", t, _identical(got, expected)))

  fast = tokenization.FullTokenizer(FLAGS.vocab_file, FLAGS.do_lower_case)  # cold cache
  got, t_fast = _timed(lambda: fast.convert_batch_to_ids(lines))
  fast_identical = _identical(got, expected)
  results.append(("ours_fast_batch", t_fast, fast_identical))
  got, t = _timed(lambda: fast.convert_batch_to_ids(lines))
  results.append(("ours_fast_batch_warm_cache", t, _identical(got, expected)))

  if FLAGS.in_graph:
    layer = preprocessing.BertTokenizerLayer(FLAGS.vocab_file, FLAGS.do_lower_case)
    fn = tf.function(layer.call)
    bs = FLAGS.graph_batch_size
    batches = [tf.constant(lines[i:i + bs]) for i in range(0, len(lines), bs)]
    fn(batches[0])  # trace once, outside the timing
    ragged, t = _timed(lambda: [fn(b) for b in batches])
    got = [row for r in ragged for row in r.to_list()]
    results.append(("ours_in_graph", t, _identical(got, expected)))

  try:
    from tokenizers import BertWordPieceTokenizer  # pylint: disable=import-outside-toplevel
  except ImportError:
    print("HF tokenizers not installed; skipped")
  else:
    hf = BertWordPieceTokenizer(FLAGS.vocab_file, lowercase=FLAGS.do_lower_case,
                                strip_accents=FLAGS.do_lower_case, clean_text=True,
                                handle_chinese_chars=True)
    encodings, t = _timed(lambda: hf.encode_batch(lines, add_special_tokens=False))
    threads = os.environ.get("RAYON_NUM_THREADS", str(os.cpu_count()))
    results.append((f"hf_tokenizers_encode_batch(threads={threads})", t,
                    _identical([e.ids for e in encodings], expected)))
    one = BertWordPieceTokenizer(FLAGS.vocab_file, lowercase=FLAGS.do_lower_case,
                                 strip_accents=FLAGS.do_lower_case)
    encodings, t = _timed(lambda: [one.encode(l, add_special_tokens=False) for l in lines])
    results.append(("hf_tokenizers_encode(one_thread)", t,
                    _identical([e.ids for e in encodings], expected)))

  print(f"{'path':45s} {'MB/s':>9s} {'x GR':>8s} {'identical%':>11s}")
  for name, seconds, ident in results:
    print(f"{name:45s} {mb / seconds:9.2f} {t_gr / seconds:8.2f} {ident:11.3f}")
  print(f"fast_vs_gr_speedup={t_gr / t_fast:.2f} identical={fast_identical:.3f}")


if __name__ == "__main__":
  flags.mark_flags_as_required(["input_file", "vocab_file"])
  app.run(main)
