"""SQuAD data, postprocessing and evaluation: GR's run_squad.py as the oracle, hand-made cases."""

import collections
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import gr_reference
from official_bert.data import squad_split as split_squad
from official_bert import tokenization
from official_bert.data import squad
from official_bert.tasks import span_labeling, squad_evaluate

# Runs GR's run_squad functions in a subprocess: GR's module defines absl flags
# (bert_config_file, ...) that would clash with other run scripts loaded in this process.
_GR_ORACLE = r"""
import json, sys, types
import numpy as np
import tf_slim
m = types.ModuleType("tensorflow.contrib"); m.layers = tf_slim.layers
sys.modules["tensorflow.contrib"] = m
from absl import flags
from bert import run_squad as rs
from bert import tokenization
args = json.load(open(sys.argv[1]))
flags.FLAGS(["gr", "--version_2_with_negative=%s" % args["v2"]])
tokenizer = tokenization.FullTokenizer(args["vocab_file"], do_lower_case=True)
out = {}
for is_training in (True, False):
  examples = rs.read_squad_examples(args["input_file"], is_training)
  features = []
  writer = rs.FeatureWriter(args["record_file"] + str(is_training), is_training)
  def keep(f):
    features.append(f)
    writer.process_feature(f)
  rs.convert_examples_to_features(examples, tokenizer, args["max_seq_length"],
                                  args["doc_stride"], args["max_query_length"], is_training, keep)
  writer.close()
  out[str(is_training)] = {
      "examples": [[e.qas_id, e.doc_tokens, e.orig_answer_text, e.start_position,
                    e.end_position, e.is_impossible] for e in examples],
      "features": [dict(vars(f)) for f in features]}
rng = np.random.RandomState(7)
results = []
for f in features:
  start, end = rng.normal(0, 3, (2, args["max_seq_length"]))
  if f.example_index % 2 == 0:  # a strong [CLS] on every window: the null answer can win
    start[0] = end[0] = 10.0
  results.append(rs.RawResult(f.unique_id, [float(x) for x in start], [float(x) for x in end]))
out["results"] = [list(r) for r in results]
d = args["out_dir"]
rs.write_predictions(examples, features, results, args["n_best_size"], args["max_answer_length"],
                     True, d + "/predictions.json", d + "/nbest_predictions.json",
                     d + "/null_odds.json")
json.dump(out, open(d + "/gr.json", "w"))
"""

_SETTINGS = dict(max_seq_length=64, doc_stride=24, max_query_length=16, n_best_size=7,
                 max_answer_length=12)


def _v1_slice(data_dir, tmp_dir):
  """The first 6 paragraphs of dev-v1.1's first article, one answer per question."""
  dataset = split_squad.read_squad_file(os.path.join(data_dir, "squad", "dev-v1.1.json.zip"))
  dataset["data"] = [dict(dataset["data"][0], paragraphs=dataset["data"][0]["paragraphs"][:6])]
  part, _ = split_squad.make_split(dataset, 0, 1, first_answer_only=True)
  path = os.path.join(tmp_dir, "v1_slice.json")
  with open(path, "w") as f:
    json.dump(part, f)
  return path


@pytest.fixture(scope="module", params=["v1", "v2"])
def gr_run(request, data_dir, uncased_vocab, tmp_path_factory):
  """GR's examples, features, TFRecords and predictions on a small v1.1 / v2.0 file."""
  v2 = request.param == "v2"
  tmp_dir = str(tmp_path_factory.mktemp(request.param))
  input_file = (os.path.join(data_dir, "squad", "dev-v2.0-small.json") if v2
                else _v1_slice(data_dir, tmp_dir))
  args = dict(_SETTINGS, v2=str(v2).lower(), vocab_file=uncased_vocab, input_file=input_file,
              out_dir=tmp_dir, record_file=os.path.join(tmp_dir, "gr.tf_record"))
  args_file = os.path.join(tmp_dir, "args.json")
  with open(args_file, "w") as f:
    json.dump(args, f)
  gr_reference.run_gr("run_squad", [args_file], code=_GR_ORACLE, timeout=600)
  with open(os.path.join(tmp_dir, "gr.json")) as f:
    gr = json.load(f)
  return dict(args=args, gr=gr, v2=v2, tmp_dir=tmp_dir)


@pytest.fixture(scope="module")
def tokenizer(uncased_vocab):
  return tokenization.FullTokenizer(uncased_vocab, do_lower_case=True)


def _ours(run, tokenizer, is_training):
  args = run["args"]
  examples = squad.read_squad_examples(args["input_file"], is_training, run["v2"])
  features = squad.convert_examples_to_features(
      examples, tokenizer, args["max_seq_length"], args["doc_stride"], args["max_query_length"],
      is_training)
  return examples, features


@pytest.mark.parametrize("is_training", [True, False])
def test_examples_and_features_match_gr(gr_run, tokenizer, is_training):
  examples, features = _ours(gr_run, tokenizer, is_training)
  gr = gr_run["gr"][str(is_training)]
  assert [[e.qas_id, e.doc_tokens, e.orig_answer_text, e.start_position, e.end_position,
           e.is_impossible] for e in examples] == gr["examples"]
  assert len(features) == len(gr["features"])
  assert len(features) > len(examples)  # the small max_seq_length made several windows
  for ours, ref in zip(features, gr["features"]):
    got = dict(vars(ours))
    for key in ("token_to_orig_map", "token_is_max_context"):  # JSON keys are strings
      got[key] = {str(k): v for k, v in got[key].items()}
    assert got == ref


@pytest.mark.parametrize("is_training", [True, False])
def test_tfrecords_match_gr(gr_run, tokenizer, is_training, tmp_path):
  _, features = _ours(gr_run, tokenizer, is_training)
  path = str(tmp_path / "ours.tf_record")
  with squad.FeatureWriter(path, is_training) as writer:
    for f in features:
      writer.process_feature(f)
  assert writer.num_features == len(features)
  # Compare as messages: a proto map's serialised order is not fixed.
  ours = [tf.train.Example.FromString(r)
          for r in tf.data.TFRecordDataset(path).as_numpy_iterator()]
  ref = [tf.train.Example.FromString(r) for r in tf.data.TFRecordDataset(
      gr_run["args"]["record_file"] + str(is_training)).as_numpy_iterator()]
  assert len(ours) == len(ref) and all(a == b for a, b in zip(ours, ref))
  assert set(ref[0].features.feature) >= {"unique_ids", "input_ids"}


def test_dataset_reads_what_was_written(gr_run, tokenizer, tmp_path):
  _, features = _ours(gr_run, tokenizer, True)
  path = str(tmp_path / "train.tf_record")
  with squad.FeatureWriter(path, True) as writer:
    for f in features:
      writer.process_feature(f)
  seq_length = gr_run["args"]["max_seq_length"]
  d = span_labeling.create_dataset(path, seq_length, batch_size=3, is_training=False)
  batches = list(d.as_numpy_iterator())
  assert all(b["input_ids"].shape == (3, seq_length) for b in batches)  # static: last one padded
  got = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
  assert len(got["unique_ids"]) == 3 * ((len(features) + 2) // 3)
  real = got["unique_ids"] != 0
  assert real.sum() == len(features) and not got["input_mask"][~real].any()
  got = {k: v[real] for k, v in got.items()}
  # Read for prediction: no labels; in order.
  assert set(got) == {"unique_ids", "input_ids", "input_mask", "segment_ids", "is_real_example"}
  assert got["input_ids"].dtype == np.int32
  np.testing.assert_array_equal(got["unique_ids"], [f.unique_id for f in features])
  np.testing.assert_array_equal(got["segment_ids"], [f.segment_ids for f in features])
  train = span_labeling.create_dataset(path, seq_length, batch_size=4, is_training=True, seed=1)
  batch = next(iter(train))
  assert batch["start_positions"].shape == (4,) and batch["input_mask"].shape == (4, seq_length)
  positions = {f.unique_id: (f.start_position, f.end_position) for f in features}
  for uid, s, e in zip(batch["unique_ids"].numpy(), batch["start_positions"].numpy(),
                       batch["end_positions"].numpy()):
    assert positions[uid] == (s, e)


def test_predictions_match_gr(gr_run, tokenizer, tmp_path):
  examples, features = _ours(gr_run, tokenizer, False)
  results = [span_labeling.RawResult(*r) for r in gr_run["gr"]["results"]]
  args = gr_run["args"]
  d = str(tmp_path)
  span_labeling.write_predictions(examples, features, results, args["n_best_size"],
                          args["max_answer_length"], True, d + "/predictions.json",
                          d + "/nbest_predictions.json", d + "/null_odds.json",
                          version_2_with_negative=gr_run["v2"])
  names = ["predictions.json", "nbest_predictions.json"]
  names += ["null_odds.json"] if gr_run["v2"] else []
  assert sorted(os.listdir(d)) == sorted(names)
  for name in names:
    with open(os.path.join(d, name)) as f:
      ours = json.load(f)
    with open(os.path.join(gr_run["tmp_dir"], name)) as f:
      ref = json.load(f)
    assert list(ours) == list(ref)
    if name == "nbest_predictions.json":
      for qid in ref:
        assert [e["text"] for e in ours[qid]] == [e["text"] for e in ref[qid]]
        for key in ("probability", "start_logit", "end_logit"):
          np.testing.assert_allclose([e[key] for e in ours[qid]], [e[key] for e in ref[qid]],
                                     rtol=1e-12)
    elif name == "null_odds.json":
      np.testing.assert_allclose(list(ours.values()), list(ref.values()), rtol=1e-12)
    else:
      assert ours == ref
  with open(os.path.join(d, "predictions.json")) as f:
    predictions = json.load(f).values()
  assert all(predictions) != gr_run["v2"]  # v2.0: some null answers; v1.1: none


# ----------------------------------------------------------------------------- windows


def test_doc_spans_and_max_context_by_hand():
  spans = squad.make_doc_spans(10, 4, 3)
  assert spans == [(0, 4), (3, 4), (6, 4)]
  # Token 3: span 0 has (left 3, right 0), span 1 (0, 3): tie on min and length -> first.
  assert squad.max_context_span_index(spans, 3) == 0
  assert squad.max_context_span_index(spans, 4) == 1  # (1, 2) in span 1 only
  assert squad.max_context_span_index(spans, 6) == 1  # span 1 (3, 0) vs span 2 (0, 3) -> first
  assert squad.max_context_span_index(spans, 8) == 2
  # GR's docstring example: "bought" (index 7) is best in span C.
  words = "the man went to the store and bought a gallon of milk".split()
  spans = [squad.DocSpan(0, 5), squad.DocSpan(3, 5), squad.DocSpan(6, 5)]
  assert squad.max_context_span_index(spans, words.index("bought")) == 2
  # Short last window: stride stops once the end is covered.
  assert squad.make_doc_spans(5, 8, 2) == [(0, 5)]
  assert squad.make_doc_spans(9, 4, 8) == [(0, 4), (4, 4), (8, 1)]  # stride > length
  # GR's +0.01 * length: for long windows it can beat one more token of context. Token 250:
  # span 0 min(250, 49) + 3.00 = 52.00; span 1 min(122, 50) + 1.73 = 51.73 -> span 0.
  spans = squad.make_doc_spans(301, 300, 128)
  assert spans == [(0, 300), (128, 173)]
  assert squad.max_context_span_index(spans, 250) == 0
  assert squad.max_context_span_index(spans, 299) == 0  # 0 + 3.00 > 1 + 1.73
  assert squad.max_context_span_index(spans, 300) == 1  # only in span 1


def test_answer_in_the_middle_of_a_long_context_is_reachable(tokenizer):
  # Distinct whole-word filler, so each WordPiece identifies its place in the document.
  answer = "Neil Armstrong walked first"
  filler = [w for w in list(tokenizer.vocab)[5000:6000]
            if w.isalpha() and tokenizer.tokenize(w) == [w] and w not in answer.lower()][:300]
  words = filler[:150] + answer.split() + filler[150:]
  example = squad.SquadExample(
      qas_id="q", question_text="who walked first on the moon ?", doc_tokens=words,
      orig_answer_text=answer, start_position=150, end_position=153)
  features = squad.convert_examples_to_features([example], tokenizer, 64, 16, 20, True)
  assert len(features) > 10
  doc = [t for w in words for t in tokenizer.tokenize(w)]
  assert len(set(doc)) == len(doc)
  # Every document token is the max-context token of exactly one window.
  counts = collections.Counter()
  for f in features:
    for pos, is_max in f.token_is_max_context.items():
      counts[doc.index(f.tokens[pos])] += is_max
  assert sorted(counts) == list(range(len(doc))) and set(counts.values()) == {1}
  # Windows holding the whole answer label it; the others point at [CLS].
  answer_pieces = tokenizer.tokenize(answer)
  holding = [f for f in features if f.start_position > 0]
  assert holding
  for f in holding:
    assert f.tokens[f.start_position:f.end_position + 1] == answer_pieces
  assert all(f.start_position == f.end_position == 0 for f in features if f not in holding)
  # Exactly one window is the answer start's max-context window, and it holds the answer.
  best = [f for f in features
          if any(f.token_is_max_context[p] and f.tokens[p] == answer_pieces[0]
                 for p in f.token_is_max_context)]
  assert len(best) == 1 and best[0] in holding
  # n-best finds the answer from logits peaked on it in every window that holds it.
  results = []
  for f in features:
    start = np.zeros(64)
    end = np.zeros(64)
    if f in holding:
      start[f.start_position] = end[f.end_position] = 5.0
    results.append(span_labeling.RawResult(f.unique_id, start, end))
  predictions, _, _ = span_labeling.compute_predictions([example], features, results, 20, 30, True)
  assert predictions == {"q": answer}


# ----------------------------------------------------------------------------- n-best


def test_get_final_text_by_hand():
  gft = span_labeling.get_final_text
  assert gft("steve smith", "Steve Smith's", True) == "Steve Smith"
  assert gft("1895", "(1895-1943).", True) == "1895"
  assert gft("1943 )", "(1895-1943).", True) == "1943)"
  assert gft("resume", "Résumé", True) == "Résumé"  # accents stripped only in the prediction
  assert gft("Steve Smith", "Steve Smith's", False) == "Steve Smith"
  assert gft("steve smith", "Steve Smith's", False) == "Steve Smith's"  # cased: no match
  assert gft("xyz", "Steve", True) == "Steve"  # not found -> the original words
  assert gft("john", "Mr.John", True) == "John"


def _feature(tokens, token_to_orig_map, max_context=None, unique_id=1, example_index=0):
  if max_context is None:
    max_context = {k: True for k in token_to_orig_map}
  return squad.InputFeatures(
      unique_id=unique_id, example_index=example_index, doc_span_index=0, tokens=tokens,
      token_to_orig_map=token_to_orig_map, token_is_max_context=max_context,
      input_ids=[0] * len(tokens), input_mask=[1] * len(tokens), segment_ids=[0] * len(tokens))


def _logits(n, peaks):
  x = np.full(n, -10.0)
  for i, v in peaks.items():
    x[i] = v
  return x


def test_nbest_by_hand():
  # [CLS] who ? [SEP] the steve smith ' s house [SEP]  (doc words: "The", "Steve", "Smith's", "house")
  tokens = ["[CLS]", "who", "?", "[SEP]", "the", "steve", "smith", "'", "s", "house", "[SEP]"]
  t2o = {4: 0, 5: 1, 6: 2, 7: 2, 8: 2, 9: 3}
  example = squad.SquadExample("q1", "who?", ["The", "Steve", "Smith's", "house"])
  feature = _feature(tokens, t2o)
  start = _logits(11, {1: 9.0, 5: 4.0, 4: 3.0, 9: 2.5})   # 1 is in the question: dropped
  end = _logits(11, {6: 4.0, 10: 8.0, 2: 7.0, 9: 1.0})     # 10 is [SEP], 2 the question
  preds, nbest, odds = span_labeling.compute_predictions(
      [example], [feature], [span_labeling.RawResult(1, start, end)], n_best_size=4,
      max_answer_length=30, do_lower_case=True)
  assert preds == {"q1": "Steve Smith"} and odds == {}
  texts = [e["text"] for e in nbest["q1"]]
  # Candidates: starts {5, 4, 9} x ends {6, 9} (end >= start): 5-6 8.0, 4-6 7.0, 5-9 5.0,
  # 4-9 4.0, 9-9 3.5; n-best keeps 4.
  assert texts == ["Steve Smith", "The Steve Smith", "Steve Smith's house",
                   "The Steve Smith's house"]
  probs = np.exp([8.0, 7.0, 5.0, 4.0])
  np.testing.assert_allclose([e["probability"] for e in nbest["q1"]], probs / probs.sum())
  assert nbest["q1"][0]["start_logit"] == 4.0 and nbest["q1"][0]["end_logit"] == 4.0
  # max_answer_length=1 leaves only 1-token spans: "house" (9-9, 3.5).
  preds, _, _ = span_labeling.compute_predictions(
      [example], [feature], [span_labeling.RawResult(1, start, end)], 4, 1, True)
  assert preds == {"q1": "house"}
  # A start outside its max-context window is dropped.
  feature_nm = _feature(tokens, t2o, {k: k != 5 for k in t2o})
  preds, _, _ = span_labeling.compute_predictions(
      [example], [feature_nm], [span_labeling.RawResult(1, start, end)], 4, 30, True)
  assert preds == {"q1": "The Steve Smith"}
  # Duplicate texts (two windows giving the same span) appear once in the n-best.
  f2 = _feature(tokens, t2o, unique_id=2)
  _, nbest, _ = span_labeling.compute_predictions(
      [example], [feature, f2],
      [span_labeling.RawResult(1, start, end), span_labeling.RawResult(2, start, end)],
      4, 30, True)
  assert [e["text"] for e in nbest["q1"]] == texts


def test_v2_null_answer_by_hand():
  tokens = ["[CLS]", "q", "[SEP]", "alpha", "beta", "[SEP]"]
  t2o = {3: 0, 4: 1}
  example = squad.SquadExample("q2", "q", ["Alpha", "beta"])
  # Two windows: null scores 1+1=2 and 3+0.5=3.5 -> the min, 2.0, from window 1.
  f1 = _feature(tokens, t2o, unique_id=1)
  f2 = _feature(tokens, t2o, {3: False, 4: False}, unique_id=2)
  r1 = span_labeling.RawResult(1, _logits(6, {0: 1.0, 3: 2.0}), _logits(6, {0: 1.0, 4: 1.5}))
  r2 = span_labeling.RawResult(2, _logits(6, {0: 3.0, 3: 9.0}), _logits(6, {0: 0.5, 4: 9.0}))
  args = ([example], [f1, f2], [r1, r2], 5, 30, True)
  preds, nbest, odds = span_labeling.compute_predictions(*args, version_2_with_negative=True)
  # Best non-null: "Alpha beta" 2.0 + 1.5 = 3.5 (window 2 is never max context); diff = 2 - 3.5.
  assert odds == {"q2": pytest.approx(-1.5)}
  assert preds == {"q2": "Alpha beta"}
  assert [e["text"] for e in nbest["q2"]][:2] == ["Alpha beta", ""]
  assert "" in [e["text"] for e in nbest["q2"]]
  preds, _, _ = span_labeling.compute_predictions(*args, version_2_with_negative=True,
                                          null_score_diff_threshold=-2.0)
  assert preds == {"q2": ""}
  # Only the null answer valid: no crash, predicts "".
  f3 = _feature(tokens, t2o, {3: False, 4: False}, unique_id=3)
  r3 = span_labeling.RawResult(3, r2.start_logits, r2.end_logits)
  preds, _, odds = span_labeling.compute_predictions([example], [f3], [r3], 5, 30, True,
                                             version_2_with_negative=True)
  assert preds == {"q2": ""} and odds["q2"] > 0


# ----------------------------------------------------------------------------- bad input


def _write(tmp_path, obj, name="bad.json"):
  path = str(tmp_path / name)
  with open(path, "w") as f:
    f.write(obj if isinstance(obj, str) else json.dumps(obj))
  return path


def _squad(qas, context="Paris is in France."):
  return {"version": "1.1", "data": [{"title": "Geo", "paragraphs": [
      {"context": context, "qas": qas}]}]}


def test_bad_input_names_file_and_question(tmp_path):
  path = _write(tmp_path, '{"data": [')
  with pytest.raises(ValueError, match=r"not valid JSON.*bad\.json:1\)"):
    squad.read_squad_examples(path, False)
  with open(path, "wb") as f:
    f.write(b'{"data": [\n{"title": "caf\xe9"}]}')
  with pytest.raises(ValueError, match=r"not UTF-8.*bad\.json:2\)"):
    squad.read_squad_examples(path, False)
  with pytest.raises(ValueError, match=r"SQuAD file not found \(\S*nothing\.json\)"):
    squad.read_squad_examples(str(tmp_path / "nothing.json"), False)
  path = _write(tmp_path, {"articles": []})
  with pytest.raises(ValueError, match=r"bad\.json.*'data'"):
    squad.read_squad_examples(path, False)
  path = _write(tmp_path, _squad([{"id": "qx1", "answers": []}]))
  with pytest.raises(ValueError, match=r"bad\.json.*article 1 \('Geo'\), question id 'qx1'.*"
                                       r"'question'"):
    squad.read_squad_examples(path, False)
  qa = {"id": "qx2", "question": "Where?", "answers": [
      {"text": "France", "answer_start": 12}, {"text": "France", "answer_start": 12}]}
  path = _write(tmp_path, _squad([qa]))
  assert len(squad.read_squad_examples(path, False)) == 1  # predicting: answers unused
  with pytest.raises(ValueError, match=r"qx2.*2 answers"):
    squad.read_squad_examples(path, True)
  qa = {"id": "qx3", "question": "Where?", "answers": [{"text": "France"}]}
  with pytest.raises(ValueError, match=r"qx3.*'answer_start'"):
    squad.read_squad_examples(_write(tmp_path, _squad([qa])), True)
  qa = {"id": "qx4", "question": "Where?", "answers": [{"text": "France", "answer_start": 90}]}
  with pytest.raises(ValueError, match=r"qx4.*outside the context"):
    squad.read_squad_examples(_write(tmp_path, _squad([qa])), True)
  qa = {"id": "qx5", "question": "Where?", "answers": [{"text": "France", "answer_start": 12}]}
  with pytest.raises(ValueError, match=r"qx5.*'is_impossible'"):
    squad.read_squad_examples(_write(tmp_path, _squad([qa])), True, version_2_with_negative=True)
  path = _write(tmp_path, {"data": [{"title": "T", "paragraphs": [{"qas": []}]}]})
  with pytest.raises(ValueError, match=r"article 1 \('T'\), paragraph 1.*'context'"):
    squad.read_squad_examples(path, False)


def test_unrecoverable_answer_is_skipped_with_a_warning(tmp_path, caplog):
  qas = [{"id": "ok", "question": "Where?", "answers": [{"text": "France", "answer_start": 12}]},
         # The offset points at "France." but the text says "Spain": not recoverable.
         {"id": "bad", "question": "Where?", "answers": [{"text": "Spain", "answer_start": 12}]}]
  path = _write(tmp_path, _squad(qas))
  examples = squad.read_squad_examples(path, True)
  assert [e.qas_id for e in examples] == ["ok"]
  assert examples[0].doc_tokens[examples[0].start_position] == "France."
  assert any("could not find answer" in r.getMessage() and "'bad'" in r.getMessage()
             for r in caplog.records)


# ----------------------------------------------------------------------------- evaluation


_V1_DATA = [{"title": "t", "paragraphs": [{"context": "c", "qas": [
    {"id": "q1", "answers": [{"text": "Denver Broncos"}, {"text": "The Denver Broncos"}]},
    {"id": "q2", "answers": [{"text": "Santa Clara, California"}]},
    {"id": "q3", "answers": [{"text": "gold"}, {"text": "golden anniversary"}]},
    {"id": "q4", "answers": [{"text": "Levi's Stadium"}]}]}]}]
# q1 exact after normalisation; q2 P=1 R=2/3 -> F1 0.8; q3 best vs "golden anniversary":
# P=1 R=1/2 -> 2/3; q4 has no prediction -> 0.
_V1_PREDS = {"q1": "the Denver Broncos.", "q2": "Santa Clara", "q3": "a golden"}

_V2_DATA = [{"title": "t", "paragraphs": [{"context": "c", "qas": [
    {"id": "a1", "answers": [{"text": "France"}], "is_impossible": False},
    {"id": "a2", "answers": [{"text": "10th and 11th centuries"}], "is_impossible": False},
    {"id": "n1", "answers": [], "is_impossible": True},
    {"id": "n2", "answers": [], "is_impossible": True}]}]}]
_V2_PREDS = {"a1": "France", "a2": "11th centuries", "n1": "", "n2": "Rollo"}
_V2_ODDS = {"a1": -5.0, "a2": 0.5, "n1": 2.0, "n2": -1.0}


def test_evaluate_v1_matches_the_official_formula_by_hand(tmp_path):
  metrics = squad_evaluate.evaluate_v1(_V1_DATA, _V1_PREDS)
  assert metrics == {"exact_match": pytest.approx(25.0),
                     "f1": pytest.approx(100 * (1 + 0.8 + 2 / 3 + 0) / 4)}
  data = _write(tmp_path, {"version": "1.1", "data": _V1_DATA}, "data.json")
  preds = _write(tmp_path, _V1_PREDS, "predictions.json")
  out = str(tmp_path / "eval.json")
  assert squad_evaluate.evaluate_files(data, preds, output_file=out) == metrics
  with open(out) as f:
    assert json.load(f) == pytest.approx(metrics)


def test_evaluate_v2_matches_the_official_formula_by_hand(tmp_path):
  metrics = squad_evaluate.evaluate_v2(_V2_DATA, _V2_PREDS, _V2_ODDS)
  # n1's odds 2.0 > 1.0 (the official na_prob_thresh): scored as a null prediction, correct.
  # Raw: a1 1/1, a2 0/(2/3), n1 1/1, n2 0/0.
  # Best threshold: start at 2 (all null); by odds a1 +1 -> 3 (best, thresh -5), n2 -1,
  # a2 +0 or +2/3, n1 0 -> best 3/4 for EM and F1, at -5.0.
  assert metrics == pytest.approx({
      "exact": 50.0, "f1": 100 * (1 + 2 / 3 + 1) / 4, "total": 4,
      "HasAns_exact": 50.0, "HasAns_f1": 100 * (1 + 2 / 3) / 2, "HasAns_total": 2,
      "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2,
      "best_exact": 75.0, "best_exact_thresh": -5.0, "best_f1": 75.0, "best_f1_thresh": -5.0})
  data = _write(tmp_path, {"version": "v2.0", "data": _V2_DATA}, "data.json")
  preds = _write(tmp_path, _V2_PREDS, "predictions.json")
  odds = _write(tmp_path, _V2_ODDS, "null_odds.json")
  assert squad_evaluate.evaluate_files(data, preds, odds, True) == pytest.approx(metrics)
  no_odds = squad_evaluate.evaluate_v2(_V2_DATA, _V2_PREDS)
  assert no_odds["exact"] == 50.0 and "best_f1" not in no_odds  # n1 predicted "" anyway


def test_evaluate_ignores_unknown_ids(caplog):
  """As the official scripts: a prediction for an id absent from the data set is not scored."""
  extra = {"zz1": "x", "zz2": "y"}
  assert squad_evaluate.evaluate_v1(_V1_DATA, {**_V1_PREDS, **extra}) == pytest.approx(
      squad_evaluate.evaluate_v1(_V1_DATA, _V1_PREDS))
  odds = {**_V2_ODDS, "zz1": 0.0, "zz2": 3.0}
  assert squad_evaluate.evaluate_v2(_V2_DATA, {**_V2_PREDS, **extra}, odds) == pytest.approx(
      squad_evaluate.evaluate_v2(_V2_DATA, _V2_PREDS, _V2_ODDS))
  assert any("ignoring 2 prediction(s)" in r.getMessage() for r in caplog.records)


def test_is_labelled(tmp_path):
  assert squad_evaluate.is_labelled(_write(tmp_path, {"data": _V1_DATA}))
  unlabelled = [{"paragraphs": [{"context": "c", "qas": [{"id": "x", "question": "?"}]}]}]
  assert not squad_evaluate.is_labelled(_write(tmp_path, {"data": unlabelled}))
  assert squad_evaluate.is_labelled(_write(tmp_path, {"data": _V2_DATA}), True)
  assert not squad_evaluate.is_labelled(_write(tmp_path, {"data": _V2_DATA}), False)


def test_split_by_article(data_dir):
  dataset = split_squad.read_squad_file(os.path.join(data_dir, "squad", "dev-v1.1.json.zip"))
  assert len(dataset["data"]) == 48
  name, start, end = split_squad.parse_split("train:1-24", 48)
  train, n_train = split_squad.make_split(dataset, start, end, first_answer_only=True)
  evals, n_eval = split_squad.make_split(dataset, 24, 48)
  assert (name, len(train["data"]), len(evals["data"])) == ("train", 24, 24)
  assert n_train + n_eval == 10570  # the official dev set's question count
  assert all(len(qa["answers"]) == 1 for a in train["data"] for p in a["paragraphs"]
             for qa in p["qas"])
  assert max(len(qa["answers"]) for a in evals["data"] for p in a["paragraphs"]
             for qa in p["qas"]) > 1
  assert train["data"][0]["title"] == dataset["data"][0]["title"]
  assert evals["data"][0]["title"] == dataset["data"][24]["title"]
  with pytest.raises(ValueError, match="1-48"):
    split_squad.parse_split("x:40-50", 48)
