"""Evaluation metrics of the fine-tuning tasks (GLUE's official ones), on numpy arrays.

Every function takes labels and predictions of the real examples only; `glue_metrics` drops the
padding rows (is_real_example == 0) first. Values are fractions in [0, 1] (correlations in [-1, 1]),
as GR's eval_accuracy.
"""

import numpy as np
import scipy.stats
import sklearn.metrics

# The metrics GLUE reports per task (besides eval_loss).
TASK_METRICS = {
    "cola": ("mcc", "accuracy"),
    "sst2": ("accuracy",),
    "mrpc": ("f1", "accuracy"),
    "stsb": ("pearson", "spearman"),
    "qqp": ("f1", "accuracy"),
    "mnli": ("accuracy",),
    "qnli": ("accuracy",),
    "rte": ("accuracy",),
    "wnli": ("accuracy",),
    "xnli": ("accuracy",),
}
_ALIASES = {"sst-2": "sst2", "sts-b": "stsb"}


def accuracy(labels, predictions):
  """Fraction of predictions equal to the labels."""
  labels, predictions = np.asarray(labels), np.asarray(predictions)
  return float(np.mean(labels == predictions)) if labels.size else 0.0


def f1(labels, predictions):
  """Binary F1 of the positive class (label id 1), as GLUE scores MRPC and QQP."""
  return float(sklearn.metrics.f1_score(labels, predictions, pos_label=1, average="binary",
                                        zero_division=0.0))


def matthews_corrcoef(labels, predictions):
  """Matthews correlation (CoLA); 0 when it is undefined (a constant labelling)."""
  return float(sklearn.metrics.matthews_corrcoef(labels, predictions))


def pearson(labels, scores):
  """Pearson correlation of scores with gold scores (STS-B)."""
  return float(scipy.stats.pearsonr(labels, scores)[0])


def spearman(labels, scores):
  """Spearman rank correlation (ties get average ranks) of scores with gold scores (STS-B)."""
  return float(scipy.stats.spearmanr(labels, scores)[0])


_FUNCTIONS = {"accuracy": accuracy, "f1": f1, "mcc": matthews_corrcoef,
              "pearson": pearson, "spearman": spearman}


def task_name_key(task_name):
  name = task_name.lower()
  name = _ALIASES.get(name, name)
  if name not in TASK_METRICS:
    raise ValueError(f"no metrics for task {task_name!r}; known tasks: {sorted(TASK_METRICS)}")
  return name


def glue_metrics(task_name, labels, logits, is_real_example=None, prefix="eval_"):
  """The task's metrics from model outputs, keyed like GR's eval results ("eval_accuracy", ...).

  labels: [N] label ids (float scores for STS-B). logits: [N, num_labels] (classification; the
  prediction is the argmax) or [N] / [N, 1] scores (regression). is_real_example: [N], 0 for
  padding rows, which are left out.
  """
  name = task_name_key(task_name)
  labels = np.asarray(labels)
  logits = np.asarray(logits)
  if is_real_example is not None:
    keep = np.asarray(is_real_example).astype(bool)
    labels, logits = labels[keep], logits[keep]
  if name == "stsb":
    predictions = logits.reshape(-1)
  else:
    predictions = np.argmax(logits, axis=-1)
  return {prefix + m: _FUNCTIONS[m](labels, predictions) for m in TASK_METRICS[name]}


def eval_loss(labels, logits, is_real_example=None, is_regression=False):
  """GR's eval_loss: mean per-example loss of the real examples (cross entropy; MSE for STS-B)."""
  labels = np.asarray(labels)
  logits = np.asarray(logits, np.float64)
  if is_regression:
    per_example = np.square(logits.reshape(-1) - labels.astype(np.float64))
  else:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    per_example = -log_probs[np.arange(len(labels)), labels.astype(np.int64)]
  if is_real_example is None:
    return float(per_example.mean())
  w = np.asarray(is_real_example, np.float64)
  return float((per_example * w).sum() / max(w.sum(), 1.0))
