"""The official SQuAD evaluation (v1.1 and v2.0), as run after prediction.

The arithmetic is tf-models-official's copy of the official scripts
(`official.nlp.tools.squad_evaluate_v1_1` / `squad_evaluate_v2_0`); this module gives their results
the official scripts' key names and scale (percentages):
  v1.1: {"exact_match", "f1"}
  v2.0: {"exact", "f1", "total", "HasAns_*", "NoAns_*"} and, given null odds (GR's
        null_odds.json, passed as the official script's --na-prob-file),
        {"best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"}.
"""

import json

from absl import logging
from official.nlp.tools import squad_evaluate_v1_1
from official.nlp.tools import squad_evaluate_v2_0
import tensorflow as tf

from official_bert import utils
from official_bert.data import squad


def _question_ids(dataset):
  return {qa["id"] for article in dataset for p in article.get("paragraphs", [])
          for qa in p.get("qas", [])}


def drop_unknown_ids(dataset, predictions, na_probs=None):
  """(predictions, na_probs) without ids the dataset does not have, logging how many.

  The official scripts score only the dataset's questions and ignore any other prediction
  (e.g. predictions made on a larger file); the tf-models copy of v2.0 raises KeyError instead.
  """
  known = _question_ids(dataset)
  unknown = sorted(set(predictions) - known)
  if unknown:
    logging.warning("SQuAD evaluation: ignoring %d prediction(s) whose id is not in the data "
                    "set (as the official script), e.g. %r", len(unknown), unknown[:3])
    predictions = {k: v for k, v in predictions.items() if k in known}
  if na_probs is not None and set(na_probs) - known:
    na_probs = {k: v for k, v in na_probs.items() if k in known}
  return predictions, na_probs


def evaluate_v1(dataset, predictions):
  """Official v1.1 EM / F1 (in %) of {qas_id: text} against the articles of a SQuAD file.

  Questions without a prediction score 0, as in the official script; predictions of ids not in
  the data set are ignored (with a warning saying how many).
  """
  predictions, _ = drop_unknown_ids(dataset, predictions)
  result = squad_evaluate_v1_1.evaluate(dataset, predictions)
  return {"exact_match": 100.0 * result["exact_match"], "f1": 100.0 * result["final_f1"]}


def evaluate_v2(dataset, predictions, na_probs=None):
  """Official v2.0 metrics (in %) of {qas_id: text}; `na_probs` {qas_id: null score diff}.

  As the official script: only questions with a prediction count; a question whose na_prob
  exceeds 1.0 counts as predicted unanswerable; with `na_probs`, also the threshold on them
  that maximises EM / F1 and the score at it. Ids not in the data set are ignored.
  """
  predictions, na_probs = drop_unknown_ids(dataset, predictions, na_probs)
  result = squad_evaluate_v2_0.evaluate(dataset, predictions, na_probs)
  out = {k: result[k] for k in ("exact", "f1", "total") if k in result}
  for prefix in ("HasAns", "NoAns"):
    for k in ("exact", "f1", "total"):
      if f"{prefix}_{k}" in result:
        out[f"{prefix}_{k}"] = result[f"{prefix}_{k}"]
  if na_probs is not None:
    for k in ("exact", "exact_thresh", "f1", "f1_thresh"):
      out[f"best_{k}"] = result[f"final_{k}"]
  return out


def _load_json(path, what):
  with tf.io.gfile.GFile(path, "r") as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}: the {what} is not valid JSON ({e.msg} at line {e.lineno})") from e


def evaluate_files(data_file, prediction_file, null_odds_file=None, version_2_with_negative=False,
                   output_file=None):
  """Evaluates predictions.json (+ null_odds.json for v2.0) against a labelled SQuAD file.

  Writes the metrics as JSON to `output_file` if given, and returns them.
  """
  dataset = squad.load_squad_json(data_file)
  predictions = _load_json(prediction_file, "prediction file")
  if version_2_with_negative:
    na_probs = _load_json(null_odds_file, "null odds file") if null_odds_file else None
    metrics = evaluate_v2(dataset, predictions, na_probs)
  else:
    metrics = evaluate_v1(dataset, predictions)
  logging.info("SQuAD %s evaluation of %s on %s: %s",
               "v2.0" if version_2_with_negative else "v1.1", prediction_file, data_file,
               json.dumps(metrics))
  if output_file:
    with utils.atomic_open(output_file, "w") as f:
      f.write(json.dumps(metrics, indent=2) + "\n")
  return metrics


def is_labelled(data_file, version_2_with_negative=False):
  """True if every question of a SQuAD file can be scored: an "answers" list, non-empty for v1.1."""
  dataset = squad.load_squad_json(data_file)
  for article in dataset:
    for p in article.get("paragraphs", []):
      for qa in p.get("qas", []):
        answers = qa.get("answers")
        if not isinstance(answers, list) or (not answers and not version_2_with_negative):
          return False
  return True
