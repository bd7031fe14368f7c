"""Pre-training data: identical to GR's create_pretraining_data, scale mode statistics, bad input."""

import functools
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import gr_reference
from official_bert import tokenization
from official_bert.data import classifier
from official_bert.data import corpus as prepare_corpus
from official_bert.data import gr_instances
from official_bert.data import inspect_records as inspect_tfrecords
from official_bert.data import pretraining
from official_bert.data import pretraining_pipeline as pp
from official_bert.data import scale_instances
from official_bert.data import wire_format

S, P = 128, 20

# GR (bert-tensorflow 1.0.4) run in one subprocess for several jobs. 1.0.4 predates whole-word
# masking, so for "wwm" jobs its create_masked_lm_predictions is replaced by the rule of GR master
# written out here independently: "##" pieces join the previous candidate word, candidates are
# shuffled as words, a word that would overflow num_to_predict is skipped, and each piece of a
# chosen word gets its own 80/10/10 draw.
_GR_JOBS = r"""
import json, random, sys
from absl import flags
from bert import create_pretraining_data as cpd, tokenization
flags.FLAGS.mark_as_parsed()  # GR's tokenizer reads flag defaults

def wwm_rule(tokens, masked_lm_prob, max_predictions_per_seq, vocab_words, rng):
  words = []
  for i, t in enumerate(tokens):
    if t in ("[CLS]", "[SEP]"):
      continue
    if words and t.startswith("##"):
      words[-1].append(i)
    else:
      words.append([i])
  rng.shuffle(words)
  n = min(max_predictions_per_seq, max(1, int(round(len(tokens) * masked_lm_prob))))
  out, picked = list(tokens), []
  for w in words:
    if len(picked) >= n:
      break
    if len(picked) + len(w) > n:
      continue
    for i in w:
      if rng.random() < 0.8:
        out[i] = "[MASK]"
      elif rng.random() < 0.5:
        pass
      else:
        out[i] = vocab_words[rng.randint(0, len(vocab_words) - 1)]
      picked.append(i)
  picked.sort()
  return out, picked, [tokens[i] for i in picked]

plain = cpd.create_masked_lm_predictions
for job in json.loads(sys.argv[1]):
  cpd.create_masked_lm_predictions = wwm_rule if job["wwm"] else plain
  tok = tokenization.FullTokenizer(job["vocab"], job["lower"])
  inst = cpd.create_training_instances(job["inputs"], tok, 128, job["dupe"], 0.1, 0.15, 20,
                                       random.Random(job["seed"]))
  cpd.write_instance_to_example_files(inst, tok, 128, 20, job["outputs"])
"""


def read_examples(path):
  return [tf.train.Example.FromString(r) for r in
          tf.data.TFRecordDataset(path).as_numpy_iterator()]


def read_raw(path):
  return list(tf.data.TFRecordDataset(path).as_numpy_iterator())


def features(example):
  f = example.features.feature
  return {k: list(getattr(f[k], f[k].WhichOneof("kind")).value) for k in f}


@pytest.fixture(scope="module")
def wiki_text(data_dir, tmp_path_factory):
  """The first 12 articles of a WikiExtractor file, through corpus preparation."""
  raw = open(os.path.join(data_dir, "wikipedia_sample", "wiki_00"), encoding="utf-8").read()
  cut = 0
  for _ in range(12):
    cut = raw.index("</doc>", cut) + len("</doc>")
  d = tmp_path_factory.mktemp("wiki")
  (d / "raw").write_text(raw[:cut] + "\n", encoding="utf-8")
  prepare_corpus.prepare([str(d / "raw")], str(d / "wiki.txt"), "wikiextractor")
  return str(d / "wiki.txt")


def _jobs(data_dir, wiki_text, uncased, cased):
  sample = os.path.join(data_dir, "sample_text", "sample_text.txt")
  return {  # name -> (inputs, vocab, do_lower_case, whole_word_mask, dupe, seed)
      "sample_uncased": ([sample], uncased, True, False, 10, 12345),
      "sample_cased_wwm": ([sample], cased, False, True, 10, 7),
      "wiki_uncased": ([wiki_text], uncased, True, False, 2, 12345),
      "wiki_cased": ([wiki_text], cased, False, False, 2, 3),
      "wiki_uncased_wwm": ([wiki_text], uncased, True, True, 2, 12345),
      "two_files": ([sample, wiki_text], uncased, True, False, 1, 99),
  }


@pytest.fixture(scope="module")
def gr_outputs(data_dir, wiki_text, uncased_vocab, cased_vocab, tmp_path_factory):
  if not gr_reference.gr_available():
    pytest.fail("bert-tensorflow / tf_slim missing: pip install -r requirements-dev.txt")
  d = tmp_path_factory.mktemp("gr")
  jobs = _jobs(data_dir, wiki_text, uncased_vocab, cased_vocab)
  spec = []
  for name, (inputs, vocab, lower, wwm, dupe, seed) in jobs.items():
    outputs = [str(d / f"{name}.{i}.tfrecord") for i in range(2 if name == "two_files" else 1)]
    spec.append(dict(inputs=inputs, vocab=vocab, lower=lower, wwm=wwm, dupe=dupe, seed=seed,
                     outputs=outputs))
  gr_reference.run_gr("create_pretraining_data", [json.dumps(spec)], code=_GR_JOBS)
  return {job_name: job for job_name, job in zip(jobs, spec)}


def _ours(job, out_dir, name):
  options = pp.make_options(job["vocab"], do_lower_case=job["lower"],
                            do_whole_word_mask=job["wwm"], dupe_factor=job["dupe"],
                            random_seed=job["seed"])
  outputs = [str(out_dir / f"{name}.{i}.tfrecord") for i in range(len(job["outputs"]))]
  count = pp.run_compat(job["inputs"], outputs, options)
  return outputs, count


@pytest.mark.parametrize("name", ["sample_uncased", "sample_cased_wwm", "wiki_uncased",
                                  "wiki_cased", "wiki_uncased_wwm", "two_files"])
def test_compat_mode_matches_gr(name, gr_outputs, tmp_path):
  job = gr_outputs[name]
  ours, count = _ours(job, tmp_path, name)
  total = 0
  for gr_path, our_path in zip(job["outputs"], ours):
    gr_ex, our_raw = read_examples(gr_path), read_raw(our_path)
    assert len(gr_ex) == len(our_raw) > 0
    for i, (g, raw) in enumerate(zip(gr_ex, our_raw)):
      o = tf.train.Example.FromString(raw)
      assert o == g, f"{name}: record {i} differs"
      # Byte-stable: our bytes are the deterministic serialization of the same message.
      assert raw == g.SerializeToString(deterministic=True)
    total += len(gr_ex)
  assert count == total


def test_output_bytes_stable_across_runs(gr_outputs, tmp_path):
  job = gr_outputs["sample_uncased"]
  (tmp_path / "a").mkdir()
  (tmp_path / "b").mkdir()
  a, _ = _ours(job, tmp_path / "a", "x")
  b, _ = _ours(job, tmp_path / "b", "x")
  assert open(a[0], "rb").read() == open(b[0], "rb").read()
  # Framed without TensorFlow: the same file tf.io.TFRecordWriter writes for these records.
  with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as w:
    for raw in read_raw(a[0]):
      w.write(raw)
  assert open(a[0], "rb").read() == open(tmp_path / "tf.tfrecord", "rb").read()


def assert_whole_words_masked(paths, vocab_file):
  """No word is partly masked; returns how many masked "##" pieces were checked."""
  inv = {i: t for t, i in tokenization.load_vocab(vocab_file).items()}
  multi_piece_masked = 0
  for path in paths:
    for ex in read_examples(path):
      f = features(ex)
      k = int(sum(f["masked_lm_weights"]))
      masked = set(f["masked_lm_positions"][:k])
      labels = dict(zip(f["masked_lm_positions"][:k], f["masked_lm_ids"][:k]))
      n = sum(f["input_mask"])
      original = [labels.get(i, t) for i, t in enumerate(f["input_ids"][:n])]
      # Words: a piece starting with "##" continues the previous token.
      for i in range(1, n):
        if inv[original[i]].startswith("##") and inv[original[i - 1]] not in ("[SEP]", "[CLS]"):
          assert (i in masked) == (i - 1 in masked), "a word was partly masked"
          multi_piece_masked += i in masked
  return multi_piece_masked


def test_whole_word_masking_groups_pieces(gr_outputs, tmp_path):
  job = gr_outputs["wiki_uncased_wwm"]
  ours, _ = _ours(job, tmp_path, "wwm")
  assert assert_whole_words_masked(ours, job["vocab"]) > 0


def test_serializer_matches_protobuf():
  vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##b"]
                                      + [f"w{i}" for i in range(20000)])}
  enc = wire_format.ExampleEncoder(S, P, len(vocab))
  rng = random.Random(0)
  for n, k in [(5, 1), (S, P), (70, 0), (3, 2)]:
    ids = [rng.randrange(len(vocab)) for _ in range(n)]
    pos = sorted(rng.sample(range(1, n), min(k, n - 1)))
    labels = [rng.randrange(len(vocab)) for _ in pos]
    num_a = max(1, n // 3)
    raw = enc.encode(ids, num_a, pos, labels, n % 2 == 1)
    ex = tf.train.Example(features=tf.train.Features(feature={
        "input_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=ids + [0] * (S - n))),
        "input_mask": tf.train.Feature(int64_list=tf.train.Int64List(
            value=[1] * n + [0] * (S - n))),
        "segment_ids": tf.train.Feature(int64_list=tf.train.Int64List(
            value=[0] * num_a + [1] * (n - num_a) + [0] * (S - n))),
        "masked_lm_positions": tf.train.Feature(int64_list=tf.train.Int64List(
            value=pos + [0] * (P - len(pos)))),
        "masked_lm_ids": tf.train.Feature(int64_list=tf.train.Int64List(
            value=labels + [0] * (P - len(pos)))),
        "masked_lm_weights": tf.train.Feature(float_list=tf.train.FloatList(
            value=[1.0] * len(pos) + [0.0] * (P - len(pos)))),
        "next_sentence_labels": tf.train.Feature(int64_list=tf.train.Int64List(value=[n % 2])),
    }))
    assert raw == ex.SerializeToString(deterministic=True)
    # The TF-free decoder (used for the logs) reads back what protobuf reads.
    assert wire_format.decode_example(raw) == features(ex)
    parsed = pretraining.parse_example(tf.constant(raw), S, P)
    assert parsed["input_ids"].dtype == tf.int32
    np.testing.assert_array_equal(parsed["input_ids"].numpy()[:n], ids)
    np.testing.assert_array_equal(parsed["masked_lm_weights"].numpy(),
                                  [1.0] * len(pos) + [0.0] * (P - len(pos)))


# ------------------------------------------------------------------------------------------------
# Scale mode
# ------------------------------------------------------------------------------------------------


def _stats(paths, mask_id):
  n_tok = n_masked = n_mask = n_kept = n_inst = n_random_next = 0
  lengths = []
  for path in paths:
    for ex in read_examples(path):
      f = features(ex)
      n = sum(f["input_mask"])
      k = int(sum(f["masked_lm_weights"]))
      for p, label in zip(f["masked_lm_positions"][:k], f["masked_lm_ids"][:k]):
        shown = f["input_ids"][p]
        n_mask += shown == mask_id
        n_kept += shown == label
      n_tok += n
      n_masked += k
      n_inst += 1
      n_random_next += f["next_sentence_labels"][0]
      lengths.append(n)
  lengths = np.array(lengths)
  return dict(masked_fraction=n_masked / n_tok, mask=n_mask / n_masked, kept=n_kept / n_masked,
              random_next=n_random_next / n_inst, short=np.mean(lengths < S * 0.6),
              mean_length=lengths.mean(), count=n_inst)


def _split_documents(path, max_sentences):
  """Rewrites a prepared corpus with each document cut into pieces of <= max_sentences lines."""
  out, run = [], 0
  for line in open(path, encoding="utf-8").read().split("\n"):
    if not line.strip():
      if out and out[-1]:
        out.append("")
      run = 0
      continue
    out.append(line)
    run += 1
    if run == max_sentences:
      out.append("")
      run = 0
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(out))


def test_scale_mode_statistics_match_compat(data_dir, uncased_vocab, tmp_path):
  # Real text: two WikiExtractor files, cut into ~1,300 documents of <= 12 sentences. GR draws
  # the short-sequence target once per document, so with whole articles (~75) the short and
  # random-next rates move by +-0.05 with the seed; with 1,300 documents, over 8 seeds, GR's
  # rates span 0.150-0.165 and 0.575-0.585 (ours 0.138-0.162, 0.576-0.589).
  wiki = str(tmp_path / "wiki.txt")
  prepare_corpus.prepare([os.path.join(data_dir, "wikipedia_sample", f"wiki_0{i}") for i in (0, 1)],
                         wiki, "wikiextractor")
  _split_documents(wiki, 12)
  options = pp.make_options(uncased_vocab, dupe_factor=3)
  compat = [str(tmp_path / "compat.tfrecord")]
  pp.run_compat([wiki], compat, options)
  scale = pp.shard_names(str(tmp_path / "scale"), 3)
  pp.run_scale([wiki], scale, options, num_workers=2, chunk_chars=300000)
  mask_id = tokenization.load_vocab(uncased_vocab)["[MASK]"]
  a, b = _stats(compat, mask_id), _stats(scale, mask_id)
  assert a["count"] > 10000 and abs(a["count"] - b["count"]) < 0.03 * a["count"]
  assert abs(b["masked_fraction"] - 0.15) < 0.01
  assert abs(a["masked_fraction"] - b["masked_fraction"]) < 0.005
  assert abs(b["mask"] - 0.8) < 0.01 and abs(b["kept"] - 0.1) < 0.01
  # GR forces a random next when a chunk holds one sentence, so its rate sits above 0.5.
  assert 0.5 <= b["random_next"] < 0.65 and abs(a["random_next"] - b["random_next"]) < 0.02
  assert abs(a["short"] - b["short"]) < 0.03 and 0.03 < b["short"] < 0.3
  assert abs(a["mean_length"] - b["mean_length"]) < 0.03 * a["mean_length"]
  for path in scale:
    assert inspect_tfrecords.inspect(path, S, P) > 0


def test_varint_rows_match_protobuf_varints():
  # Every byte-length class (1-4 bytes), rows of mixed lengths, and the one-byte fast path,
  # against protobuf's own varint encoder.
  from google.protobuf.internal.encoder import _VarintBytes as varint  # pylint: disable=import-outside-toplevel
  table = wire_format.VarintTable(1 << 22)
  rng = np.random.default_rng(0)
  edges = [0, 1, 127, 128, 16383, 16384, (1 << 21) - 1, 1 << 21, (1 << 22) - 1]
  for values in (rng.choice(edges, (7, 9)), rng.integers(0, 1 << 22, (50, 13)),
                 rng.integers(0, 128, (5, 4)), np.zeros((3, 2), np.int64)):
    data, lens = table.rows(values)
    rows = [b"".join(varint(v) for v in row) for row in values.tolist()]
    assert data.tobytes() == b"".join(rows)
    assert lens.tolist() == [len(r) for r in rows]
  with pytest.raises(ValueError, match="table size"):
    table.rows(np.array([[1 << 22]]))


def test_truncated_lengths_match_gr_loop():
  # GR's truncate_seq_pair, written out: trim the longer list (b on a tie) one token at a time.
  rng = np.random.default_rng(0)
  la, lb = rng.integers(1, 300, 2000), rng.integers(1, 300, 2000)
  la[:5], lb[:5] = [62, 63, 100, 1, 125], [62, 63, 100, 124, 1]
  for m in (125, 124, 7):
    want = []
    for a, b in zip(la.tolist(), lb.tolist()):
      while a + b > m:
        if a > b:
          a -= 1
        else:
          b -= 1
      want.append((a, b))
    got_a, got_b = scale_instances.truncated_lengths(la, lb, m)
    assert list(zip(got_a.tolist(), got_b.tolist())) == want


def test_scale_records_are_canonical_tfrecords(wiki_text, uncased_vocab, tmp_path):
  # Our numpy serializer + TFRecord framing vs protobuf and tf.io.TFRecordWriter on the same
  # messages: the files must be byte-identical.
  options = pp.make_options(uncased_vocab, dupe_factor=1, do_whole_word_mask=True)
  ours = pp.shard_names(str(tmp_path / "ours"), 1)
  pp.run_scale([wiki_text], ours, options, num_workers=1, chunk_chars=40000)
  examples = read_examples(ours[0])
  assert len(examples) > 500
  with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as w:
    for ex in examples:
      w.write(ex.SerializeToString(deterministic=True))
  assert open(ours[0], "rb").read() == open(tmp_path / "tf.tfrecord", "rb").read()
  assert inspect_tfrecords.inspect(ours[0], S, P) == len(examples)
  assert assert_whole_words_masked(ours, uncased_vocab) > 0


def test_tapered_chunks_keep_the_documents(tmp_path):
  # Guided scheduling: smaller first and last chunks, the same documents in the same order.
  path = tmp_path / "docs.txt"
  rng = random.Random(0)
  path.write_text("".join(f"Document {d} sentence {i} " + "x" * rng.randrange(40, 160) + "\n"
                          + ("\n" if i == 9 else "")
                          for d in range(200) for i in range(10)), encoding="utf-8")
  plain = list(pp.iter_chunks([str(path)], 20000))
  tapered = list(pp.iter_chunks([str(path)], 20000, taper=True))
  assert [d for c in tapered for d in c] == [d for c in plain for d in c]
  chars = [sum(len(line) for doc in c for line in doc) for c in tapered]
  longest_doc = max(sum(map(len, doc)) for c in plain for doc in c)
  assert len(tapered) > len(plain) >= 8
  assert chars[0] < 20000 // 8 + longest_doc < 20000 <= chars[1]
  tail = chars[-6:]
  assert tail[-1] < 20000 // 8 + longest_doc
  assert all(x >= y - longest_doc for x, y in zip(tail, tail[1:]))  # shrinking


def test_scale_mode_deterministic_whatever_the_workers(wiki_text, uncased_vocab, tmp_path,
                                                       monkeypatch):
  # Small encode batches, so each chunk has several and the workers split them differently
  # (1 worker: all in-process; 2 and 3: each chunk's batches cut into 2 or 3 tasks).
  small = functools.partial(scale_instances.ChunkInstanceMaker, batch_size=50)
  monkeypatch.setattr(pp, "build_scale", lambda options: pp.build(options, small))
  options = pp.make_options(uncased_vocab, dupe_factor=1, random_seed=5)
  runs = {}
  for workers in (1, 2, 3):
    runs[workers] = pp.shard_names(str(tmp_path / f"w{workers}"), 2)
    pp.run_scale([wiki_text], runs[workers], options, num_workers=workers, chunk_chars=30000)
  one = runs[1]
  assert len(read_examples(one[0])) > 4 * 50
  for workers in (2, 3):
    for x, y in zip(one, runs[workers]):
      assert open(x, "rb").read() == open(y, "rb").read()
  other = pp.shard_names(str(tmp_path / "seed"), 2)
  pp.run_scale([wiki_text], other, options._replace(random_seed=6), num_workers=1,
               chunk_chars=30000)
  assert open(one[0], "rb").read() != open(other[0], "rb").read()


# ------------------------------------------------------------------------------------------------
# Bad input, tools
# ------------------------------------------------------------------------------------------------


def test_missing_input_names_the_pattern(uncased_vocab, tmp_path):
  from official_bert.cli import create_pretraining_data as cpd  # pylint: disable=import-outside-toplevel
  from absl import flags  # pylint: disable=import-outside-toplevel
  pattern = str(tmp_path / "nothing_*.txt")
  flags.FLAGS([
      "x", f"--input_file={pattern}", f"--output_file={tmp_path / 'o'}",
      f"--vocab_file={uncased_vocab}"])
  with pytest.raises(FileNotFoundError, match="nothing_"):
    cpd.main([])
  assert not os.path.exists(tmp_path / "o")


def test_invalid_utf8_dropped_and_empty_documents_skipped(uncased_vocab, tmp_path):
  clean = "The cat sat on the mat.\nIt was happy there.\n\n\n\nA dog came by.\nIt barked twice.\n"
  dirty = clean.encode().replace(b"cat", b"c\xffat").replace(b"dog", b"d\xc3og")
  (tmp_path / "clean.txt").write_text("\n\n" + clean + "\n\n")
  (tmp_path / "dirty.txt").write_bytes(dirty)
  options = pp.make_options(uncased_vocab, dupe_factor=3)
  pp.run_compat([str(tmp_path / "clean.txt")], [str(tmp_path / "c.tfrecord")], options)
  pp.run_compat([str(tmp_path / "dirty.txt")], [str(tmp_path / "d.tfrecord")], options)
  assert read_raw(str(tmp_path / "c.tfrecord")) == read_raw(str(tmp_path / "d.tfrecord"))
  docs = list(gr_instances.iter_documents([str(tmp_path / "clean.txt")], len))
  assert len(docs) == 2


def test_interrupted_run_leaves_no_output(uncased_vocab, tmp_path, monkeypatch):
  (tmp_path / "in.txt").write_text("One sentence here.\nAnother one.\n\nA third.\nA fourth.\n")
  calls = []

  def boom(record, tokenizer):
    calls.append(1)
    if len(calls) == 2:
      raise KeyboardInterrupt

  monkeypatch.setattr(pp, "log_example", boom)
  with pytest.raises(KeyboardInterrupt):
    pp.run_compat([str(tmp_path / "in.txt")], [str(tmp_path / "out.tfrecord")],
                  pp.make_options(uncased_vocab, dupe_factor=2))
  assert os.listdir(tmp_path) == ["in.txt"]


def test_inspect_rejects_a_bad_record(tmp_path):
  ex = tf.train.Example(features=tf.train.Features(feature={
      "input_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=[1] * 7))}))
  with tf.io.TFRecordWriter(str(tmp_path / "bad.tfrecord")) as w:
    w.write(ex.SerializeToString())
  with pytest.raises(ValueError, match="record 0"):
    inspect_tfrecords.inspect(str(tmp_path / "bad.tfrecord"), S, P)


def test_inspect_prints_masked_tokens(gr_outputs):
  job = gr_outputs["sample_uncased"]
  inv = {i: t for t, i in tokenization.load_vocab(job["vocab"]).items()}
  lines = []
  n = inspect_tfrecords.inspect(job["outputs"][0], S, P, inv, 2, lines.append)
  assert n > 100 and len(lines) == 2
  assert lines[0].startswith("[is_random_next=") and "[CLS]" in lines[0] and "||" in lines[0]
  assert "{" in lines[0]


def test_prepare_corpus_formats():
  wiki = ["<doc id=\"1\" title=\"T\">", "T", "", "First sentence here. Dr. Who came.",
          "Second para! Yes.", "</doc>", "<doc id=\"2\" title=\"U\">", "U", "Too short.", "</doc>"]
  docs = list(prepare_corpus.documents(wiki, "wikiextractor", min_sentences=2, min_chars=10))
  assert docs == [["First sentence here.", "Dr. Who came.", "Second para!", "Yes."]]
  book = ["Licence blah.", "*** START OF THE PROJECT GUTENBERG EBOOK X ***", "Call me",
          "Ishmael. Some years ago.", "", "Next para.", "*** END OF THE PROJECT GUTENBERG EBOOK",
          "licence footer."]
  docs = list(prepare_corpus.documents(book, "gutenberg", min_sentences=1, min_chars=1))
  assert docs == [["Call me Ishmael.", "Some years ago.", "Next para."]]
  wt = [" = A = ", "", " Text one . More text here . ", " = = Sub = = ", " Para two . ",
        " = B = ", " Alone . "]
  docs = list(prepare_corpus.documents(wt, "wikitext", min_sentences=1, min_chars=1))
  assert docs == [["Text one .", "More text here .", "Para two ."], ["Alone ."]]


def test_prepare_corpus_from_a_task_keeps_sources_and_pairs_together(tmp_path):
  cola = tmp_path / "CoLA"
  cola.mkdir()
  (cola / "train.tsv").write_text(
      "gj04\t1\t\tOne more and I'm giving up.\n"
      "gj04\t0\t*\tOne more or giving up I'm.\n"
      "bc01\t1\t\tThe sailors rode the breeze.\n"
      "gj04\t1\t\tBack to the first source.\n", encoding="utf-8")
  assert [e.document for e in
          classifier.get_processor("cola").get_train_examples(str(cola))] == [
              "gj04", "gj04", "bc01", "gj04"]
  out = str(tmp_path / "cola.txt")
  assert prepare_corpus.write_documents(prepare_corpus.task_documents("CoLA", str(cola)), out) == (3, 4)
  # Consecutive rows of one source form a document; sentences are not re-split or filtered.
  assert open(out, encoding="utf-8").read() == (
      "One more and I'm giving up.\nOne more or giving up I'm.\n\n"
      "The sailors rode the breeze.\n\nBack to the first source.\n")
  # What create_pretraining_data reads back: the same documents (one id per character here).
  docs = list(gr_instances.iter_documents([out], lambda line: [ord(c) for c in line[:2]]))
  assert [[bytes(s).decode() for s in d] for d in docs] == [["On", "On"], ["Th"], ["Ba"]]

  # A pair task (the RTE fixture): each example's two sentences are one document.
  rte = os.path.join(os.path.dirname(__file__), "fixtures", "glue", "RTE")
  docs = list(prepare_corpus.task_documents("rte", rte))
  with open(os.path.join(rte, "train.tsv"), encoding="utf-8") as f:
    rows = [line.rstrip("\n").split("\t") for line in f][1:]
  assert docs == [[r[1], r[2]] for r in rows]


def test_prepare_corpus_flags_want_one_source(tmp_path):
  script = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data_prep", "prepare_corpus.py")
  for args, message in [([], "either --input_file"),
                        (["--input_file=x.txt", "--task_name=cola"], "not both"),
                        (["--task_name=cola"], "--task_name needs --data_dir")]:
    proc = subprocess.run([sys.executable, script, f"--output_file={tmp_path}/o.txt"] + args,
                          capture_output=True, text=True, check=False,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-500:]
  assert not os.path.exists(tmp_path / "o.txt")


# ------------------------------------------------------------------------------------------------
# The command line: no TensorFlow for local paths, errors, interruptions, progress
# ------------------------------------------------------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(job, args, env=None, **kwargs):
  """Runs `python -m official_bert.cli.<job> ARGS` with this checkout first on the path."""
  env = dict(os.environ, **(env or {}))
  env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
  return subprocess.run([sys.executable, *kwargs.pop("python_args", []), "-m",
                         f"official_bert.cli.{job}", *args], capture_output=True, text=True,
                        check=False, env=env, **kwargs)


@pytest.fixture(scope="module")
def medium_text(data_dir, tmp_path_factory):
  """~1 MB of prepared Wikipedia text (a few seconds of work at dupe 2)."""
  d = tmp_path_factory.mktemp("medium")
  prepare_corpus.prepare([os.path.join(data_dir, "wikipedia_sample", "wiki_00")],
                         str(d / "wiki.txt"), "wikiextractor")
  return str(d / "wiki.txt")


@pytest.mark.parametrize("job,args", [
    ("create_pretraining_data", ["--dupe_factor=1"]),
    ("create_pretraining_data", ["--dupe_factor=1", "--num_workers=2", "--output_shards=2",
                                 "--chunk_chars=2000"]),
    ("prepare_corpus", ["--input_format=lines"]),
])
def test_local_data_prep_imports_no_tensorflow(job, args, wiki_text, uncased_vocab, tmp_path):
  if job == "prepare_corpus":
    args = args + [f"--input_file={wiki_text}", f"--output_file={tmp_path / 'out.txt'}"]
  else:
    args = args + [f"--input_file={wiki_text}", f"--output_file={tmp_path / 'out'}",
                   f"--vocab_file={uncased_vocab}"]
  # -X importtime lists every module imported, by the parent and by forked workers alike.
  proc = _cli(job, args, python_args=["-X", "importtime"])
  assert proc.returncode == 0, proc.stderr[-2000:]
  imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
              if line.startswith("import time:")}
  assert ("official_bert.data.corpus" if job == "prepare_corpus" else
          "official_bert.data.pretraining_pipeline") in imported
  assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "keras", "tf_keras")}
  assert os.listdir(tmp_path)


@pytest.mark.parametrize("case", ["empty", "blank_lines", "dupe_zero", "output_is_dir",
                                  "shards_zero"])
@pytest.mark.parametrize("scale", [False, True])
def test_bad_input_fails_before_writing(case, scale, uncased_vocab, tmp_path):
  (tmp_path / "empty.txt").write_text("")
  (tmp_path / "blank.txt").write_text("\n  \n\n\t\n")
  (tmp_path / "ok.txt").write_text("One sentence here.\nAnother one.\n\nA third.\nA fourth.\n")
  (tmp_path / "outdir").mkdir()
  inputs, output, extra, message = {
      "empty": ("empty.txt", "out", [], "no text in the input"),
      "blank_lines": ("blank.txt", "out", [], "no text in the input"),
      "dupe_zero": ("ok.txt", "out", ["--dupe_factor=0"], "--dupe_factor=0"),
      "output_is_dir": ("ok.txt", "outdir", [], "the output path is a directory"),
      "shards_zero": ("ok.txt", "out", ["--output_shards=0"], "--output_shards"),
  }[case]
  mode = ["--num_workers=2", "--output_shards=2"] if scale else []
  before = set(os.listdir(tmp_path))
  proc = _cli("create_pretraining_data", [
      f"--input_file={tmp_path / inputs}", f"--output_file={tmp_path / output}",
      f"--vocab_file={uncased_vocab}", *mode, *extra])
  assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-1500:]
  assert set(os.listdir(tmp_path)) == before  # no output, no partial file
  assert not os.listdir(tmp_path / "outdir")


def _hidden(paths):
  return [p for p in paths if os.path.basename(p).startswith(".")]


@pytest.mark.parametrize("scale", [False, True])
def test_killed_run_leaves_nothing_a_glob_matches_and_reruns_identically(
    scale, medium_text, uncased_vocab, tmp_path):
  import glob  # pylint: disable=import-outside-toplevel
  import signal  # pylint: disable=import-outside-toplevel
  import time  # pylint: disable=import-outside-toplevel
  spill = tmp_path / "tmp"
  spill.mkdir()
  env = {"TMPDIR": str(spill)}

  def args(out_dir):
    out_dir.mkdir(exist_ok=True)
    mode = ["--num_workers=2", "--output_shards=3", "--chunk_chars=40000"] if scale else []
    return [f"--input_file={medium_text}", f"--output_file={out_dir / 'train'}",
            f"--vocab_file={uncased_vocab}", "--dupe_factor=3", *mode]

  ref = _cli("create_pretraining_data", args(tmp_path / "ref"), env)
  assert ref.returncode == 0, ref.stderr[-2000:]
  want = {os.path.basename(p): open(p, "rb").read()
          for p in glob.glob(str(tmp_path / "ref" / "train*"))}
  assert len(want) == (3 if scale else 1)

  for sig in (signal.SIGTERM, signal.SIGKILL):
    out = tmp_path / f"run{sig}"
    cmd = [sys.executable, "-m", "official_bert.cli.create_pretraining_data", *args(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT, **env))
    # Kill while a partial output exists (and, in scale mode, workers have spilled work).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
      partial = _hidden(glob.glob(str(out / ".*")))
      spilled = glob.glob(str(spill / "*" / "*"))
      if partial and (spilled or not scale):
        break
      time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(sig)
    stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode != 0
    # Nothing complete-looking: the shard / file glob of the output matches nothing.
    assert not glob.glob(str(out / "train*"))
    if sig == signal.SIGTERM:
      assert "Stopped by signal" in stderr and "Traceback" not in stderr, stderr[-2000:]
      assert not os.listdir(out) and not os.listdir(spill)  # cleaned up on the way out
    else:
      assert _hidden(os.listdir(out))  # kill -9 leaves them; the next run sweeps
    again = _cli("create_pretraining_data", args(out), env)
    assert again.returncode == 0, again.stderr[-2000:]
    if sig == signal.SIGKILL:
      assert "a partial output left by an interrupted run" in again.stderr
      if scale:
        assert "the spill folder of an interrupted run" in again.stderr
    assert sorted(os.listdir(out)) == sorted(want)
    for name, data in want.items():
      assert open(out / name, "rb").read() == data
    assert not os.listdir(spill)


@pytest.mark.parametrize("scale", [False, True])
def test_progress_lines_with_rate_and_eta(scale, wiki_text, uncased_vocab, tmp_path):
  mode = ["--num_workers=2", "--output_shards=2", "--chunk_chars=20000"] if scale else []
  proc = _cli("create_pretraining_data", [
      f"--input_file={wiki_text}", f"--output_file={tmp_path / 'out'}",
      f"--vocab_file={uncased_vocab}", "--dupe_factor=1", *mode],
              env={"BERT_PROGRESS_SECONDS": "0"})
  assert proc.returncode == 0, proc.stderr[-2000:]
  lines = [l for l in proc.stderr.splitlines() if ", elapsed " in l]
  phases = ["Input done"] if scale else ["Reading input", "Creating instances", "Writing"]
  for phase in phases:
    mine = [l for l in lines if f"] {phase}: " in l]
    assert len(mine) >= 2, (phase, lines[:5])
    assert all("/s, elapsed " in l and ", ETA " in l for l in mine)
  if scale:
    assert "100.0%" in lines[-1] and "instances written" in lines[-1]


def _walkthrough_commands():
  """WORKSPACE.md's Cloud TPU walkthrough: its commands, continuation lines joined."""
  text = open(os.path.join(ROOT, "WORKSPACE.md"), encoding="utf-8").read()
  block = text[text.index("### Cloud TPU VM walkthrough"):]
  block = block[block.index("```") + 3:]
  block = block[:block.index("```")]
  return [line.split("#")[0].strip() if line.lstrip().startswith("#") else line.strip()
          for line in block.replace("\\\n", " ").splitlines()]


def test_cloud_tpu_walkthrough_data_then_training_on_cpu(data_dir, uncased_vocab, tmp_path):
  # Steps 3 and 4 as written, on local paths (the bucket is a folder) at tiny sizes; TPU-only
  # flags dropped. Step 4's --input_file must match every shard step 3 wrote.
  import glob  # pylint: disable=import-outside-toplevel
  import shlex  # pylint: disable=import-outside-toplevel
  commands = _walkthrough_commands()
  data_cmd = next(c for c in commands if "create_pretraining_data.py" in c)
  train_cmd = next(c for c in commands if "run_pretraining.py" in c)
  bucket = tmp_path / "bucket"
  (bucket / "pt").mkdir(parents=True)
  (tmp_path / "corpus").mkdir()
  sample = open(os.path.join(data_dir, "sample_text", "sample_text.txt"), encoding="utf-8").read()
  (tmp_path / "corpus" / "a.txt").write_text(sample, encoding="utf-8")
  (bucket / "bert_base").mkdir()
  (bucket / "bert_base" / "bert_config.json").write_text(json.dumps(dict(
      vocab_size=30522, hidden_size=24, num_hidden_layers=1, num_attention_heads=2,
      intermediate_size=36, hidden_act="gelu", hidden_dropout_prob=0.1,
      attention_probs_dropout_prob=0.1, max_position_embeddings=64, type_vocab_size=2,
      initializer_range=0.02)))

  def local(cmd, overrides, drop=()):
    words = shlex.split(cmd.replace("$BUCKET", "BUCKET"))
    assert words[0] == "python"
    args = []
    for w in words[2:]:
      w = w.replace("gs://BUCKET", str(bucket))
      name = w.split("=")[0]
      if name in drop or name in overrides:
        continue
      args.append(w)
    args += [f"{k}={v}" for k, v in overrides.items()]
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(ROOT, words[1]), *args], cwd=tmp_path,
                          capture_output=True, text=True, check=False, env=env)

  sizes = {"--max_seq_length": 32, "--max_predictions_per_seq": 5}
  proc = local(data_cmd, {"--vocab_file": uncased_vocab, "--num_workers": 2,
                          "--output_shards": 3, **sizes})
  assert proc.returncode == 0, proc.stderr[-2000:]
  shards = sorted(glob.glob(str(bucket / "pt" / "*")))
  assert [os.path.basename(s) for s in shards] == [f"tf_examples-0000{i}-of-00003" for i in range(3)]
  pattern = next(w for w in shlex.split(train_cmd.replace("$BUCKET", "BUCKET"))
                 if w.startswith("--input_file=")).split("=", 1)[1]
  assert sorted(glob.glob(pattern.replace("gs://BUCKET", str(bucket)))) == shards
  proc = local(train_cmd, {"--train_batch_size": 4, "--num_train_steps": 2,
                           "--num_warmup_steps": 1, "--steps_per_loop": 1,
                           "--save_checkpoints_steps": 2, "--max_eval_steps": 2, **sizes},
               drop=("--use_tpu", "--tpu_name", "--mixed_precision"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert os.path.exists(bucket / "pt_out" / "eval_results.txt")


def test_prepare_corpus_empty_input_fails_without_output(tmp_path):
  (tmp_path / "empty.txt").write_text("\n\n")
  proc = _cli("prepare_corpus", [f"--input_file={tmp_path / 'empty.txt'}",
                                 f"--output_file={tmp_path / 'out.txt'}"])
  assert proc.returncode != 0 and "no document in the input" in proc.stderr, proc.stderr[-1500:]
  assert os.listdir(tmp_path) == ["empty.txt"]
