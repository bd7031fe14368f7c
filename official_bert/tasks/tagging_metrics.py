"""Entity-level precision / recall / F1 for tagging (NER), conlleval-compatible, via seqeval.

seqeval's default mode follows conlleval's chunk rules (an `I-X` after `O` or another type opens
an entity), so IOB1 and BIO files give the same entities and the same scores.
"""

import warnings

from seqeval import metrics as seqeval_metrics

from official_bert import utils


def entity_scores(true_tags, pred_tags):
  """Scores tag sequences.

  Args:
    true_tags: list of sentences, each a list of gold tags (IOB1 or BIO).
    pred_tags: the same shape, predicted tags.

  Returns:
    {"precision", "recall", "f1", "accuracy" (token level), "num_entities",
     "per_type": {TYPE: {"precision", "recall", "f1", "support"}}}; precision / recall / F1
    are fractions in [0, 1] over entities, micro-averaged overall.
  """
  if len(true_tags) != len(pred_tags) or any(
      len(t) != len(p) for t, p in zip(true_tags, pred_tags)):
    raise ValueError("gold and predicted tags differ in number of sentences or words")
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # seqeval warns on zero-support types; we report 0 for them
    report = seqeval_metrics.classification_report(
        true_tags, pred_tags, output_dict=True, zero_division=0)
    scores = {
        "precision": float(seqeval_metrics.precision_score(true_tags, pred_tags, zero_division=0)),
        "recall": float(seqeval_metrics.recall_score(true_tags, pred_tags, zero_division=0)),
        "f1": float(seqeval_metrics.f1_score(true_tags, pred_tags, zero_division=0)),
        "accuracy": float(seqeval_metrics.accuracy_score(true_tags, pred_tags)),
    }
  per_type = {}
  for name, row in report.items():
    if name.endswith(" avg"):
      continue
    per_type[name] = {"precision": float(row["precision"]), "recall": float(row["recall"]),
                      "f1": float(row["f1-score"]), "support": int(row["support"])}
  scores["per_type"] = per_type
  scores["num_entities"] = sum(r["support"] for r in per_type.values())
  return scores


def format_eval_results(scores, extra=None):
  """GR-style `key = value` lines: overall, then per type; F1 etc. in percent like conlleval."""
  lines = [f"{k} = {v}" for k, v in sorted((extra or {}).items())]
  for key in ("precision", "recall", "f1"):
    lines.append(f"eval_{key} = {100 * scores[key]:.2f}")
  lines.append(f"eval_accuracy = {100 * scores['accuracy']:.2f}")
  lines.append(f"num_entities = {scores['num_entities']}")
  for name, row in sorted(scores["per_type"].items()):
    for key in ("precision", "recall", "f1"):
      lines.append(f"{name}_{key} = {100 * row[key]:.2f}")
    lines.append(f"{name}_support = {row['support']}")
  return "\n".join(lines) + "\n"


def write_eval_results(path, scores, extra=None):
  with utils.atomic_open(path, "w") as f:
    f.write(format_eval_results(scores, extra))
