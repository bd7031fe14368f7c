"""CoNLL reading, IOB1<->BIO, first-subword alignment, windowing, and entity F1."""

import os
import random

import numpy as np
import pytest
from seqeval import metrics as seqeval_metrics
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2, Entities

from official_bert.data import tagging
from official_bert.tasks import tagging as tagging_task
from official_bert.tasks import tagging_metrics


def _full_tokenizer(vocab_file, do_lower_case=True):
  try:
    from official_bert import tokenization  # pylint: disable=import-outside-toplevel
    return tokenization.FullTokenizer(vocab_file, do_lower_case)
  except ImportError:  # ours not landed yet: GR's is the same algorithm
    from gr_reference import load_gr_module  # pylint: disable=import-outside-toplevel
    return load_gr_module("tokenization").FullTokenizer(vocab_file, do_lower_case)


# A hand-made vocabulary, so the expected ids below are known without running any tokenizer.
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "john", "##son",
              "lives", "in", "new", "york", ".", "a", "##b", "##c", "##d", "##e", "x", "[MASK]"]
ID = {t: i for i, t in enumerate(TINY_VOCAB)}


@pytest.fixture()
def tiny_tokenizer(tmp_path):
  path = tmp_path / "vocab.txt"
  path.write_text("".join(t + "\n" for t in TINY_VOCAB))
  return _full_tokenizer(str(path))


def _write(tmp_path, name, text):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def _example(words, labels, source="mem", doc=0, first_line=1):
  return tagging.TaggingExample(
      guid=f"{source}-{first_line}", words=list(words), labels=list(labels),
      line_numbers=list(range(first_line, first_line + len(words))), source=source,
      document_index=doc)


CONLL = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- O O

Germany NNP I-NP I-LOC
France NNP I-NP B-LOC
"""


# ---------------------------------------------------------------------------------------------
# Reader

def test_read_conll_documents_lines_labels(tmp_path):
  path = _write(tmp_path, "a.conll", CONLL)
  examples = tagging.read_conll(path)
  assert [ex.words for ex in examples] == [
      ["EU", "rejects", "German", "call"], ["Peter", "Blackburn"], ["Germany", "France"]]
  assert [ex.labels for ex in examples] == [
      ["I-ORG", "O", "I-MISC", "O"], ["I-PER", "I-PER"], ["I-LOC", "B-LOC"]]
  assert [ex.line_numbers for ex in examples] == [[3, 4, 5, 6], [8, 9], [13, 14]]
  assert [ex.document_index for ex in examples] == [0, 0, 1]
  assert [ex.starts_document for ex in examples] == [True, False, True]


def test_read_conll_wrong_column_count_names_file_and_line(tmp_path):
  path = _write(tmp_path, "bad.conll", "EU NNP I-NP I-ORG\nrejects I-VP O\n")
  with pytest.raises(ValueError, match=r"bad\.conll:2: found 3 column"):
    tagging.read_conll(path)


def test_read_conll_bad_bytes_long_lines_and_empty_files(tmp_path):
  path = str(tmp_path / "latin1.conll")
  with open(path, "wb") as f:
    f.write(b"EU I-ORG\n\ncaf\xe9 O\n")
  with pytest.raises(ValueError, match=r"not UTF-8 .*latin1\.conll:3\)"):
    tagging.read_conll(path)
  path = _write(tmp_path, "long.conll", "EU I-ORG\n" + "x" * 140_000 + " O\n")
  with pytest.raises(ValueError, match=r"a line of 140003 characters.*long\.conll:2\)"):
    tagging.read_conll(path)
  path = _write(tmp_path, "empty.conll", "-DOCSTART- -X- O O\n\n")
  with pytest.raises(ValueError, match=r"no sentences \(\S*empty\.conll\)"):
    tagging.read_conll(path)


def test_read_conll_bad_tag_names_file_and_line(tmp_path):
  path = _write(tmp_path, "tag.conll", "EU I-ORG\n\nrejects ORG\n")
  with pytest.raises(ValueError, match=r"tag\.conll:3: tag 'ORG'"):
    tagging.read_conll(path)


def test_read_conll_words_only(tmp_path):
  path = _write(tmp_path, "words.txt", "EU\nrejects\n\nPeter\n")
  examples = tagging.read_conll(path)
  assert [ex.words for ex in examples] == [["EU", "rejects"], ["Peter"]]
  assert all(ex.labels is None for ex in examples)


def test_unknown_tag_at_predict_time_names_file_and_line(tmp_path, tiny_tokenizer):
  train = [_example(["john"], ["I-PER"])]
  label_list = tagging.get_labels([_example(["john"], tagging.iob1_to_bio(["I-PER"]))])
  assert label_list == ["O", "B-PER", "I-PER"]
  path = _write(tmp_path, "test.conll", "john I-PER\nlives O\n\nnew I-LOC\n")
  examples = tagging.read_conll(path)
  tagging.convert_examples_to_features(train, label_list, 16, tiny_tokenizer)
  with pytest.raises(ValueError, match=r"test\.conll:4: tag 'I-LOC' is not in the training"):
    tagging.convert_examples_to_features(examples, label_list, 16, tiny_tokenizer)


def test_real_conll_files_read(data_dir):
  examples = tagging.read_conll(os.path.join(data_dir, "conll2003", "eng.testa"))
  assert len(examples) == 3250  # the README's count of dev sentences
  assert examples[0].words[:3] == ["CRICKET", "-", "LEICESTERSHIRE"]


# ---------------------------------------------------------------------------------------------
# IOB1 <-> BIO

@pytest.mark.parametrize("iob1,bio", [
    (["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG"],
     ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG"]),
    (["O", "I-MISC", "B-MISC", "B-MISC", "I-MISC"],
     ["O", "B-MISC", "B-MISC", "B-MISC", "I-MISC"]),
    ([], []),
])
def test_iob1_bio_hand_cases(iob1, bio):
  assert tagging.iob1_to_bio(iob1) == bio
  assert tagging.bio_to_iob1(bio) == iob1


def test_iob1_to_bio_keeps_entities_on_real_data(data_dir):
  """seqeval's strict IOB2 parser on our BIO finds conlleval's entities of the IOB1 original."""
  examples = tagging.read_conll(os.path.join(data_dir, "conll2003", "eng.testa"))
  iob1 = [ex.labels for ex in examples]
  bio = [tagging.iob1_to_bio(t) for t in iob1]
  strict = Entities(bio, IOB2).entities  # raises on nothing, but only reads well-formed B-/I-
  for tags, tags_bio, ents in zip(iob1, bio, strict):
    assert [(e.tag, e.start, e.end - 1) for e in ents] == get_entities(tags)
    assert tagging.bio_to_iob1(tags_bio) == tags
  assert sum(t.startswith("B-") for seq in iob1 for t in seq) == 4  # grep -c " B-[A-Z]*$"


def test_bio_to_iob1_keeps_entities_of_malformed_predictions():
  rng = random.Random(3)
  tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
  for _ in range(300):
    seq = [rng.choice(tags) for _ in range(rng.randint(0, 12))]
    assert get_entities(tagging.bio_to_iob1(seq)) == get_entities(seq)
    assert get_entities(tagging.iob1_to_bio(tagging.bio_to_iob1(seq))) == get_entities(seq)


# ---------------------------------------------------------------------------------------------
# Alignment and windows

def test_first_subword_alignment_hand_made(tiny_tokenizer):
  words = ["John", "Johnson", "unaffable", "lives", "in", "New", "York", "abcde", "\ufffd", "."]
  iob1 = ["I-PER", "I-PER", "O", "O", "O", "I-LOC", "I-LOC", "I-MISC", "O", "O"]
  label_list = tagging.get_labels([_example(words, tagging.iob1_to_bio(iob1))])
  assert label_list == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-PER", "I-PER"]
  (f,) = tagging.convert_examples_to_features([_example(words, iob1)], label_list, 24,
                                              tiny_tokenizer)
  # Tokens by hand: "\ufffd" is dropped by the tokenizer and stands as [UNK].
  tokens = ["[CLS]", "john", "john", "##son", "un", "##aff", "##able", "lives", "in", "new",
            "york", "a", "##b", "##c", "##d", "##e", "[UNK]", ".", "[SEP]"]
  first = [1, 2, 4, 7, 8, 9, 10, 11, 16, 17]
  bio = ["B-PER", "I-PER", "O", "O", "O", "B-LOC", "I-LOC", "B-MISC", "O", "O"]
  assert f.input_ids == [ID[t] for t in tokens] + [0] * 5
  assert f.input_mask == [1] * 19 + [0] * 5
  assert f.segment_ids == [0] * 24
  assert f.label_weights == [1 if p in first else 0 for p in range(24)]
  expected_ids = [0] * 24
  for p, tag in zip(first, bio):
    expected_ids[p] = label_list.index(tag)
  assert f.label_ids == expected_ids
  assert f.word_positions == {p: (0, i) for i, p in enumerate(first)}


def _check_every_word_once(examples, features, label_list, max_seq_length, scheme="bio"):
  seen = {}
  for f in features:
    assert len(f.input_ids) == len(f.label_ids) == max_seq_length
    assert f.tokens[0] == "[CLS]" and f.tokens[-1] == "[SEP]"
    assert sorted(f.word_positions) == [p for p in range(max_seq_length) if f.label_weights[p]]
    for p, key in f.word_positions.items():
      assert key not in seen
      seen[key] = (f, p)
  want = {(e, w) for e, ex in enumerate(examples) for w in range(len(ex.words))}
  assert set(seen) == want
  # Predicting the gold label ids maps back to the gold tags of every word.
  preds = {f.unique_id: np.asarray(f.label_ids) for f in features}
  tags = tagging_task.word_predictions(examples, features, preds, label_list)
  assert tags == [tagging.to_bio(ex.labels, scheme) for ex in examples]
  return seen


@pytest.mark.parametrize("max_seq_length,doc_stride", [(8, None), (9, 3), (16, 1), (32, 30)])
def test_long_sentence_loses_no_word(tiny_tokenizer, max_seq_length, doc_stride):
  rng = random.Random(max_seq_length)
  pool = [("john", "B-PER"), ("johnson", "I-PER"), ("unaffable", "O"), ("abcde", "B-MISC"),
          ("x", "O"), ("new", "B-LOC"), ("york", "I-LOC")]
  words, labels = zip(*[rng.choice(pool) for _ in range(150)])
  examples = [_example(words, labels), _example(["john"], ["B-PER"])]
  label_list = tagging.get_labels(examples)
  features = tagging.convert_examples_to_features(
      examples, label_list, max_seq_length, tiny_tokenizer, scheme="bio", doc_stride=doc_stride)
  assert len(features) > 150 * 1.5 / (max_seq_length - 2)  # really split into windows
  _check_every_word_once(examples, features, label_list, max_seq_length)
  # Windows are full except the last: no window is wasted on padding.
  assert all(sum(f.input_mask) == max_seq_length for f in features[:-2])


def test_max_context_choice_matches_brute_force(tiny_tokenizer):
  """Windows' spans recomputed in the test: each word goes to the window where its min context
  (left, right) is largest."""
  words = ["x"] * 40
  examples = [_example(words, ["O"] * 40)]
  features = tagging.convert_examples_to_features(
      examples, ["O", "B-X", "I-X"], 12, tiny_tokenizer, scheme="bio", doc_stride=3)
  # 40 one-piece words, windows of 10 tokens stepping 3: starts 0, 3, ..., 30.
  starts = list(range(0, 31, 3))
  assert len(features) == len(starts)
  for f, start in zip(features, starts):
    for p, (_, w) in f.word_positions.items():
      assert w == start + p - 1
      best = max(min(w - s, s + 9 - w) for s in starts if s <= w <= s + 9)
      assert min(w - start, start + 9 - w) == best


def test_document_context_windows_span_sentences(tiny_tokenizer):
  docs = [[["john", "lives", "in", "new", "york"], ["x", "."]], [["unaffable"], ["abcde", "x"]]]
  labels = {"john": "I-PER", "new": "I-LOC", "york": "I-LOC", "abcde": "I-MISC"}
  examples = []
  for d, doc in enumerate(docs):
    for sentence in doc:
      examples.append(_example(sentence, [labels.get(w, "O") for w in sentence], doc=d))
  label_list = tagging.get_labels([_example(ex.words, tagging.iob1_to_bio(ex.labels))
                                   for ex in examples])
  features = tagging.convert_examples_to_features(
      examples, label_list, 64, tiny_tokenizer, scheme="iob1", document_context=True)
  assert len(features) == 2  # one window per document
  assert features[0].tokens == ["[CLS]", "john", "lives", "in", "new", "york", "x", ".", "[SEP]"]
  assert features[1].tokens == ["[CLS]", "un", "##aff", "##able", "a", "##b", "##c", "##d",
                                "##e", "x", "[SEP]"]
  assert features[1].word_positions == {1: (2, 0), 4: (3, 0), 9: (3, 1)}
  _check_every_word_once(examples, features, label_list, 64, scheme="iob1")
  # Small windows over a document still label each word once.
  features = tagging.convert_examples_to_features(
      examples, label_list, 5, tiny_tokenizer, scheme="iob1", document_context=True)
  _check_every_word_once(examples, features, label_list, 5, scheme="iob1")


def test_real_data_alignment_every_word_once(data_dir, uncased_vocab):
  examples = tagging.read_conll(os.path.join(data_dir, "conll2003", "eng.testa"))[:300]
  tokenizer = _full_tokenizer(uncased_vocab)
  label_list = tagging.get_labels(
      [_example(ex.words, tagging.iob1_to_bio(ex.labels)) for ex in examples])
  for context in (False, True):
    features = tagging.convert_examples_to_features(
        examples, label_list, 32, tokenizer, scheme="iob1", document_context=context)
    _check_every_word_once(examples, features, label_list, 32, scheme="iob1")


# ---------------------------------------------------------------------------------------------
# TFRecords and output files

def test_tfrecord_round_trip(tmp_path, tiny_tokenizer):
  examples = [_example(["john", "johnson", "lives"], ["B-PER", "I-PER", "O"]),
              _example(["unaffable"] * 9, ["O"] * 9)]
  label_list = tagging.get_labels(examples)
  features = tagging.convert_examples_to_features(examples, label_list, 10, tiny_tokenizer,
                                                  scheme="bio")
  assert len(features) == 7  # 1 + 27 sub-tokens in windows of 8 stepping 4
  path = str(tmp_path / "f.tf_record")
  tagging.write_features(features, path)
  batches = list(tagging_task.dataset(path, 10, batch_size=2, is_training=False))
  got = {k: np.concatenate([b[k].numpy() for b in batches]) for k in batches[0]}
  # The last batch is padded to 2 with a row that is marked and predicts nothing.
  assert got["is_real_example"].tolist() == [1] * 7 + [0]
  assert sum(got["label_weights"][-1]) == 0
  want = tagging.features_to_arrays(features)
  assert sorted(got) == sorted(list(want) + ["is_real_example"])
  for k, v in want.items():
    assert got[k].dtype == np.int32
    np.testing.assert_array_equal(got[k][:7], v)


def test_predictions_file_is_conll_and_rereads(tmp_path):
  path = _write(tmp_path, "a.conll", CONLL)
  examples = tagging.read_conll(path)
  preds = [["B-ORG", "O", "O", "O"], ["B-PER", "I-PER"], ["B-LOC", "B-LOC"]]
  out = str(tmp_path / "pred.txt")
  tagging_task.write_conll_predictions(out, examples, [tagging.from_bio(p, "iob1") for p in preds])
  lines = open(out).read().splitlines()
  assert lines[:6] == ["-DOCSTART- O O", "", "EU I-ORG I-ORG", "rejects O O",
                       "German I-MISC O", "call O O"]
  again = tagging.read_conll(out)
  assert [ex.words for ex in again] == [ex.words for ex in examples]
  assert [ex.labels for ex in again] == [["I-ORG", "O", "O", "O"], ["I-PER", "I-PER"],
                                         ["I-LOC", "B-LOC"]]
  assert [ex.document_index for ex in again] == [0, 0, 1]


# ---------------------------------------------------------------------------------------------
# Entity-level scores

SCORED = """U.N. I-ORG I-ORG
official O O
Ekeus I-PER I-PER
heads O O
for O O
Baghdad I-LOC I-ORG

New I-LOC I-LOC
York I-LOC O
and O O
Paris I-LOC I-LOC

Germany I-LOC I-LOC
France B-LOC I-LOC
"""


def test_entity_scores_hand_counted(tmp_path):
  path = _write(tmp_path, "scored.txt", SCORED)
  lines = [line.split() for line in SCORED.split("\n\n")[0].splitlines()]
  assert lines[0] == ["U.N.", "I-ORG", "I-ORG"]
  gold, pred = [], []
  for block in open(path).read().strip().split("\n\n"):
    rows = [line.split() for line in block.splitlines()]
    gold.append([r[1] for r in rows])
    pred.append([r[2] for r in rows])
  # Hand count: gold entities ORG 1, PER 1, LOC 5 (New York, Paris, Baghdad, Germany, France);
  # predicted ORG 2 (U.N., Baghdad), PER 1, LOC 3 (New, Paris, Germany France); correct 3.
  for scheme_gold, scheme_pred in ((gold, pred),
                                   ([tagging.iob1_to_bio(t) for t in gold],
                                    [tagging.iob1_to_bio(t) for t in pred])):
    s = tagging_metrics.entity_scores(scheme_gold, scheme_pred)
    assert s["precision"] == pytest.approx(3 / 6)
    assert s["recall"] == pytest.approx(3 / 7)
    assert s["f1"] == pytest.approx(6 / 13)
    assert s["accuracy"] == pytest.approx(9 / 12)
    assert s["num_entities"] == 7
    assert s["per_type"]["ORG"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert s["per_type"]["PER"] == pytest.approx(
        {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1})
    assert s["per_type"]["LOC"] == pytest.approx(
        {"precision": 1 / 3, "recall": 1 / 5, "f1": 0.25, "support": 5})
    assert s["f1"] == pytest.approx(seqeval_metrics.f1_score(scheme_gold, scheme_pred))
  text = tagging_metrics.format_eval_results(
      tagging_metrics.entity_scores(gold, pred), {"eval_loss": 0.5})
  assert "eval_f1 = 46.15\n" in text and "LOC_recall = 20.00\n" in text
  assert text.startswith("eval_loss = 0.5\n")
