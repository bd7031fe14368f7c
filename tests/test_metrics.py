"""Tests of official_bert/tasks/classification_metrics.py against hand-computed values and textbook formulas."""

import math

import numpy as np
import pytest

from official_bert.tasks import classification_metrics as metrics

#               labels             predictions
_Y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 1])
_P = np.array([1, 1, 1, 0, 0, 0, 0, 1, 1, 1])
# Counts by hand: TP = 4 (idx 0,1,2,9), FN = 1 (3), TN = 3 (4,5,6), FP = 2 (7,8).


def test_accuracy_f1_mcc_by_hand():
  assert metrics.accuracy(_Y, _P) == pytest.approx(7 / 10)
  precision, recall = 4 / 6, 4 / 5
  assert metrics.f1(_Y, _P) == pytest.approx(2 * precision * recall / (precision + recall))
  tp, tn, fp, fn = 4, 3, 2, 1
  mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
  assert metrics.matthews_corrcoef(_Y, _P) == pytest.approx(mcc)  # = 10 / sqrt(600)


def test_degenerate_cases():
  assert metrics.matthews_corrcoef([0, 1, 0, 1], [1, 1, 1, 1]) == 0.0  # constant prediction
  assert metrics.matthews_corrcoef([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)
  assert metrics.f1([0, 0, 1], [0, 0, 0]) == 0.0  # no positive predicted
  assert metrics.f1([1, 0], [1, 0]) == 1.0


def _ranks(x):
  """Average ranks (1-based) with ties sharing their mean rank, computed directly."""
  x = np.asarray(x, dtype=float)
  return np.array([np.sum(x < v) + (np.sum(x == v) + 1) / 2 for v in x])


def _pearson(a, b):
  a, b = np.asarray(a, float) - np.mean(a), np.asarray(b, float) - np.mean(b)
  return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def test_pearson_spearman():
  gold = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
  assert metrics.pearson(gold, [2 * g + 1 for g in gold]) == pytest.approx(1.0)
  assert metrics.spearman(gold, [g ** 3 for g in gold]) == pytest.approx(1.0)  # monotone
  assert metrics.pearson(gold, [g ** 3 for g in gold]) < 0.95
  # Hand case: x = (1, 2, 3), y = (1, 3, 2): Pearson = cov / (sx sy) = 0.5 / 1 = 0.5.
  assert metrics.pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
  rng = np.random.default_rng(0)
  a = rng.normal(size=50)
  b = np.round(a + rng.normal(size=50), 1)  # rounding makes ties
  b[:5] = b[5]
  assert metrics.pearson(a, b) == pytest.approx(_pearson(a, b))
  assert metrics.spearman(a, b) == pytest.approx(_pearson(_ranks(a), _ranks(b)))


def test_glue_metrics_per_task_and_padding_dropped():
  logits = np.eye(2)[_P] * 3.0  # one-hot logits -> argmax = _P
  pad_logits = np.concatenate([logits, [[0.0, 5.0], [0.0, 5.0]]])
  pad_labels = np.concatenate([_Y, [0, 0]])
  real = [1] * 10 + [0, 0]
  m = metrics.glue_metrics("MRPC", pad_labels, pad_logits, is_real_example=real)
  assert set(m) == {"eval_f1", "eval_accuracy"}
  assert m["eval_accuracy"] == pytest.approx(0.7)  # the two wrong padding rows are left out
  assert m["eval_f1"] == pytest.approx(8 / 11)  # 2 * (2/3 * 4/5) / (2/3 + 4/5)
  m = metrics.glue_metrics("cola", _Y, logits)
  assert set(m) == {"eval_mcc", "eval_accuracy"}
  assert m["eval_mcc"] == pytest.approx(10 / math.sqrt(600))
  assert set(metrics.glue_metrics("sst-2", _Y, logits)) == {"eval_accuracy"}
  assert set(metrics.glue_metrics("qqp", _Y, logits)) == {"eval_f1", "eval_accuracy"}
  for task in ("mnli", "qnli", "rte", "wnli", "xnli", "sst2"):
    assert metrics.glue_metrics(task, _Y, logits) == {"eval_accuracy": pytest.approx(0.7)}
  m = metrics.glue_metrics("sts-b", [1.0, 2.0, 3.0], [[1.0], [3.0], [2.0]], prefix="eval_mm_")
  assert m == {"eval_mm_pearson": pytest.approx(0.5), "eval_mm_spearman": pytest.approx(0.5)}
  with pytest.raises(ValueError, match="no metrics for task 'squad'"):
    metrics.glue_metrics("squad", _Y, logits)
