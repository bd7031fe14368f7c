"""Span labeling (SQuAD v1.1 / v2.0): GR's run_squad model and loss, the input pipeline over the
SQuAD TFRecords (official_bert.data.squad), the way back from start / end logits to answers
(n-best spans, `get_final_text`), predictions.json / nbest_predictions.json / null_odds.json, and
the official evaluation when the predict file has answers.

Legend: S = max_seq_length, B = batch size.
"""

import collections
import dataclasses
import json
import math
import os
import random
from typing import Optional

from absl import logging
import numpy as np
import tensorflow as tf

from official_bert import models, tokenization, utils
from official_bert.data import records, squad
from official_bert.tasks import base, losses, squad_evaluate
from official_bert.training import inputs, loop


def span_loss(features, outputs):
  """GR's loss: mean of the start and end cross entropies over the window's positions."""
  start_loss = losses.mean_cross_entropy(outputs["start_logits"], features["start_positions"])
  end_loss = losses.mean_cross_entropy(outputs["end_logits"], features["end_positions"])
  return (start_loss + end_loss) / 2.0, {"start_loss": start_loss, "end_loss": end_loss}


def create_dataset(input_file, seq_length, batch_size, is_training, input_context=None,
                   shuffle_buffer=100, seed=12345):
  """tf.data of feature dicts (int32 [B, S] / [B]) from SQuAD TFRecords (GR's input_fn).

  Training: the shared deterministic pipeline (seeded shuffle, buffer 100 as GR, whose examples
  are pre-shuffled when written; repeat; full batches), so a resumed run skips exactly the
  batches it has used. Prediction: records.eval_dataset (file order, one pass, the last batch
  padded to `batch_size` with is_real_example=0 rows). `batch_size` is per input pipeline;
  `input_context` is a tf.distribute.InputContext.
  """
  files = utils.expand_globs(input_file, "input_file") if isinstance(input_file, str) else (
      list(input_file))
  if is_training:
    return inputs.tfrecord_dataset(
        files, lambda r: squad.decode_record(r, seq_length, True), batch_size, True,
        input_context, seed=seed, shuffle_buffer=shuffle_buffer)
  return records.eval_dataset(files, lambda r: squad.decode_record(r, seq_length, False),
                              batch_size, input_context)


# ---------------------------------------------------------------------------- predictions


RawResult = collections.namedtuple("RawResult", ["unique_id", "start_logits", "end_logits"])


def _get_best_indexes(logits, n_best_size):
  """Indexes of the n largest logits; ties keep the lower index first (as GR's stable sort)."""
  return np.argsort(-np.asarray(logits, dtype=np.float64), kind="stable")[:n_best_size].tolist()


def _compute_softmax(scores):
  if not scores:
    return []
  max_score = max(scores)
  exp_scores = [math.exp(s - max_score) for s in scores]
  total = sum(exp_scores)
  return [s / total for s in exp_scores]


def _strip_spaces(text):
  """Text without spaces, and for each of its characters the index in `text`."""
  ns_chars = []
  ns_to_s_map = {}
  for i, c in enumerate(text):
    if c == " ":
      continue
    ns_to_s_map[len(ns_chars)] = i
    ns_chars.append(c)
  return "".join(ns_chars), ns_to_s_map


def get_final_text(pred_text, orig_text, do_lower_case, verbose_logging=False,
                   basic_tokenizer=None):
  """Projects the normalised WordPiece answer `pred_text` back onto the original words.

  E.g. pred_text "steve smith", orig_text "Steve Smith's" -> "Steve Smith". The original is run
  through BasicTokenizer; if it matches the original character for character (ignoring
  spaces), the answer's characters map back one to one. When that fails, returns orig_text.
  """
  if basic_tokenizer is None:
    basic_tokenizer = tokenization.BasicTokenizer(do_lower_case=do_lower_case)
  tok_text = " ".join(basic_tokenizer.tokenize(orig_text))

  start_position = tok_text.find(pred_text)
  if start_position == -1:
    if verbose_logging:
      logging.info("Unable to find text: %r in %r", pred_text, orig_text)
    return orig_text
  end_position = start_position + len(pred_text) - 1

  orig_ns_text, orig_ns_to_s_map = _strip_spaces(orig_text)
  tok_ns_text, tok_ns_to_s_map = _strip_spaces(tok_text)
  if len(orig_ns_text) != len(tok_ns_text):
    if verbose_logging:
      logging.info("Length not equal after stripping spaces: %r vs %r", orig_ns_text,
                   tok_ns_text)
    return orig_text

  tok_s_to_ns_map = {s: ns for ns, s in tok_ns_to_s_map.items()}
  orig_start_position = orig_ns_to_s_map.get(tok_s_to_ns_map.get(start_position))
  if orig_start_position is None:
    if verbose_logging:
      logging.info("Couldn't map start position")
    return orig_text
  orig_end_position = orig_ns_to_s_map.get(tok_s_to_ns_map.get(end_position))
  if orig_end_position is None:
    if verbose_logging:
      logging.info("Couldn't map end position")
    return orig_text
  return orig_text[orig_start_position:orig_end_position + 1]


_PrelimPrediction = collections.namedtuple(
    "PrelimPrediction", ["feature_index", "start_index", "end_index", "start_logit",
                         "end_logit"])
_NbestPrediction = collections.namedtuple("NbestPrediction",
                                          ["text", "start_logit", "end_logit"])


def compute_predictions(all_examples, all_features, all_results, n_best_size,
                        max_answer_length, do_lower_case, version_2_with_negative=False,
                        null_score_diff_threshold=0.0, verbose_logging=False,
                        basic_tokenizer=None):
  """Best answer per question from the windows' logits (GR's `write_predictions`, no I/O).

  Args:
    all_examples: SquadExamples; all_features: their InputFeatures;
    all_results: RawResults (start/end logits [S] per feature unique_id).
    version_2_with_negative: also score "no answer" = min over windows of the [CLS] logits;
      predict "" when null score - best non-null score > null_score_diff_threshold.
    basic_tokenizer: for get_final_text; default tokenization.BasicTokenizer(do_lower_case).
  Returns:
    (predictions {qas_id: text}, nbest {qas_id: [{text, probability, start_logit,
    end_logit}]}, null score diffs {qas_id: float}, empty unless version_2_with_negative).
  """
  example_index_to_features = collections.defaultdict(list)
  for feature in all_features:
    example_index_to_features[feature.example_index].append(feature)
  unique_id_to_result = {result.unique_id: result for result in all_results}
  if basic_tokenizer is None:  # one BasicTokenizer for every get_final_text call
    basic_tokenizer = tokenization.BasicTokenizer(do_lower_case=do_lower_case)

  all_predictions = collections.OrderedDict()
  all_nbest_json = collections.OrderedDict()
  scores_diff_json = collections.OrderedDict()
  for example_index, example in enumerate(all_examples):
    features = example_index_to_features[example_index]
    prelim_predictions = []
    score_null = 1000000.0  # min over windows of the null ([CLS]) score
    min_null_feature_index = 0
    null_start_logit = null_end_logit = 0.0
    for feature_index, feature in enumerate(features):
      if feature.unique_id not in unique_id_to_result:
        raise ValueError(f"no model output for feature unique_id {feature.unique_id} of "
                         f"question {example.qas_id!r}")
      result = unique_id_to_result[feature.unique_id]
      start_logits = [float(x) for x in result.start_logits]
      end_logits = [float(x) for x in result.end_logits]
      if version_2_with_negative:
        feature_null_score = start_logits[0] + end_logits[0]
        if feature_null_score < score_null:
          score_null = feature_null_score
          min_null_feature_index = feature_index
          null_start_logit, null_end_logit = start_logits[0], end_logits[0]
      for start_index in _get_best_indexes(start_logits, n_best_size):
        for end_index in _get_best_indexes(end_logits, n_best_size):
          # Drop spans outside the document part, in a window that is not the start
          # token's max-context window, reversed, or too long.
          if start_index >= len(feature.tokens) or end_index >= len(feature.tokens):
            continue
          if (start_index not in feature.token_to_orig_map
              or end_index not in feature.token_to_orig_map):
            continue
          if not feature.token_is_max_context.get(start_index, False):
            continue
          if end_index < start_index or end_index - start_index + 1 > max_answer_length:
            continue
          prelim_predictions.append(_PrelimPrediction(
              feature_index, start_index, end_index, start_logits[start_index],
              end_logits[end_index]))
    if version_2_with_negative:
      prelim_predictions.append(_PrelimPrediction(
          min_null_feature_index, 0, 0, null_start_logit, null_end_logit))
    prelim_predictions.sort(key=lambda x: x.start_logit + x.end_logit, reverse=True)

    seen_predictions = set()
    nbest = []
    for pred in prelim_predictions:
      if len(nbest) >= n_best_size:
        break
      feature = features[pred.feature_index]
      if pred.start_index > 0:  # a span; index 0 is the null answer
        tok_tokens = feature.tokens[pred.start_index:pred.end_index + 1]
        orig_doc_start = feature.token_to_orig_map[pred.start_index]
        orig_doc_end = feature.token_to_orig_map[pred.end_index]
        orig_text = " ".join(example.doc_tokens[orig_doc_start:orig_doc_end + 1])
        # Undo WordPiece: join "##" pieces, normalise whitespace.
        tok_text = " ".join(tok_tokens).replace(" ##", "").replace("##", "")
        tok_text = " ".join(tok_text.strip().split())
        final_text = get_final_text(tok_text, orig_text, do_lower_case, verbose_logging,
                                    basic_tokenizer)
        if final_text in seen_predictions:
          continue
      else:
        final_text = ""
      seen_predictions.add(final_text)
      nbest.append(_NbestPrediction(final_text, pred.start_logit, pred.end_logit))

    if version_2_with_negative and "" not in seen_predictions:
      nbest.append(_NbestPrediction("", null_start_logit, null_end_logit))
    if not nbest:  # no valid span at all (rare): a placeholder, as GR
      nbest.append(_NbestPrediction("empty", 0.0, 0.0))

    probs = _compute_softmax([e.start_logit + e.end_logit for e in nbest])
    all_nbest_json[example.qas_id] = [
        collections.OrderedDict([("text", e.text), ("probability", p),
                                 ("start_logit", e.start_logit), ("end_logit", e.end_logit)])
        for e, p in zip(nbest, probs)]

    if not version_2_with_negative:
      all_predictions[example.qas_id] = nbest[0].text
    else:
      best_non_null_entry = next((e for e in nbest if e.text), None)
      if best_non_null_entry is None:
        # Only the null answer survived (GR would crash here): predict "" with a large diff.
        scores_diff_json[example.qas_id] = 1000000.0
        all_predictions[example.qas_id] = ""
        continue
      score_diff = score_null - best_non_null_entry.start_logit - best_non_null_entry.end_logit
      scores_diff_json[example.qas_id] = score_diff
      all_predictions[example.qas_id] = (
          "" if score_diff > null_score_diff_threshold else best_non_null_entry.text)
  return all_predictions, all_nbest_json, scores_diff_json


def write_json(obj, path):
  """Writes `obj` as indented JSON, atomically (GR's layout: indent 4, trailing newline)."""
  with utils.atomic_open(path, "w") as f:
    f.write(json.dumps(obj, indent=4) + "\n")


def write_predictions(all_examples, all_features, all_results, n_best_size, max_answer_length,
                      do_lower_case, output_prediction_file, output_nbest_file,
                      output_null_log_odds_file, version_2_with_negative=False,
                      null_score_diff_threshold=0.0, verbose_logging=False,
                      basic_tokenizer=None):
  """compute_predictions, then writes predictions.json, nbest_predictions.json and (v2.0)
  null_odds.json. Returns the three dicts."""
  logging.info("Writing predictions to: %s", output_prediction_file)
  logging.info("Writing nbest to: %s", output_nbest_file)
  outputs = compute_predictions(all_examples, all_features, all_results, n_best_size,
                                max_answer_length, do_lower_case, version_2_with_negative,
                                null_score_diff_threshold, verbose_logging, basic_tokenizer)
  all_predictions, all_nbest_json, scores_diff_json = outputs
  write_json(all_predictions, output_prediction_file)
  write_json(all_nbest_json, output_nbest_file)
  if version_2_with_negative:
    write_json(scores_diff_json, output_null_log_odds_file)
  return outputs


# ---------------------------------------------------------------------------- the job


@dataclasses.dataclass
class SpanLabelingConfig:
  """What run_squad's flags set for the task."""
  output_dir: str
  train_file: Optional[str] = None
  predict_file: Optional[str] = None
  do_lower_case: bool = True
  max_seq_length: int = 384
  doc_stride: int = 128
  max_query_length: int = 64
  n_best_size: int = 20
  max_answer_length: int = 30
  version_2_with_negative: bool = False
  null_score_diff_threshold: float = 0.0
  verbose_logging: bool = False
  shuffle_buffer_size: int = 100
  seed: int = 12345


class SpanLabelingTask:
  """SQuAD: train on train_file; predict (and evaluate, when labelled) predict_file."""

  def __init__(self, config: SpanLabelingConfig, bert_config, tokenizer):
    self.config = config
    self.tokenizer = tokenizer
    self.loop_task = loop.Task(build_model=lambda: models.BertSpanLabeler(bert_config),
                               loss_fn=span_loss, name="squad")
    self._eval_examples = None

  def read_examples(self, is_training):
    c = self.config
    return squad.read_squad_examples(c.train_file if is_training else c.predict_file,
                                     is_training, c.version_2_with_negative)

  def _features(self, examples, is_training, path):
    """Windows of `examples` written to `path`; returns the features (kept for prediction)."""
    c = self.config
    features = []
    with squad.FeatureWriter(path, is_training) as writer:
      def keep(feature):
        writer.process_feature(feature)
        if not is_training:
          features.append(feature)
      squad.convert_examples_to_features(examples, self.tokenizer, c.max_seq_length,
                                         c.doc_stride, c.max_query_length, is_training, keep)
    return features, writer.num_features

  def _dataset_fn(self, path, global_batch, is_training):
    c = self.config

    def fn(ctx):
      return create_dataset(path, c.max_seq_length, ctx.get_per_replica_batch_size(global_batch),
                            is_training, ctx, shuffle_buffer=c.shuffle_buffer_size, seed=c.seed)
    return fn

  def train_data(self, global_batch):
    """GR counts steps from the questions, not the windows."""
    examples = self.read_examples(True)
    # Pre-shuffle so a small shuffle buffer suffices (GR).
    random.Random(self.config.seed).shuffle(examples)
    path = os.path.join(self.config.output_dir, "train.tf_record")
    _, num_features = self._features(examples, True, path)
    logging.info("***** Running training *****\n  Num orig examples = %d\n  Num split examples "
                 "= %d\n  Batch size = %d", len(examples), num_features, global_batch)
    return self._dataset_fn(path, global_batch, True), len(examples)

  def predict(self, strategy, model, global_batch, examples):
    """predictions.json, nbest_predictions.json (+ null_odds.json), and eval_results.json when
    the predict file has answers."""
    c = self.config
    path = os.path.join(c.output_dir, "eval.tf_record")
    features, _ = self._features(examples, False, path)
    logging.info("***** Running predictions *****\n  Num orig examples = %d\n  Num split "
                 "examples = %d\n  Batch size = %d", len(examples), len(features), global_batch)
    out = base.predict_real(
        strategy, self._dataset_fn(path, global_batch, False), model,
        predict_fn=lambda f, o: {k: tf.cast(o[k], tf.float32)
                                 for k in ("start_logits", "end_logits")},
        keep_features=("unique_ids",), num_examples=len(features), global_batch=global_batch)
    results = [RawResult(int(u), s, e) for u, s, e in
               zip(out["unique_ids"], out["start_logits"], out["end_logits"])]
    files = {name: os.path.join(c.output_dir, f"{name}.json")
             for name in ("predictions", "nbest_predictions", "null_odds", "eval_results")}
    write_predictions(
        examples, features, results, c.n_best_size, c.max_answer_length, c.do_lower_case,
        files["predictions"], files["nbest_predictions"], files["null_odds"],
        c.version_2_with_negative, c.null_score_diff_threshold, c.verbose_logging)
    if not squad_evaluate.is_labelled(c.predict_file, c.version_2_with_negative):
      logging.info("%s has unanswered questions: no evaluation", c.predict_file)
      return None
    metrics = squad_evaluate.evaluate_files(
        c.predict_file, files["predictions"],
        files["null_odds"] if c.version_2_with_negative else None, c.version_2_with_negative,
        files["eval_results"])
    logging.info("***** Eval results *****\n%s",
                 "\n".join(f"  {k} = {v}" for k, v in metrics.items()))
    return metrics

  def evaluate(self, strategy, model, global_batch):
    """The official metrics of --predict_file (which must hold answers), for periodic
    evaluation: the predictions and eval_results.json of the current model."""
    if self._eval_examples is None:
      if not squad_evaluate.is_labelled(self.config.predict_file,
                                        self.config.version_2_with_negative):
        raise ValueError(f"{self.config.predict_file} has unanswered questions: periodic "
                         "evaluation needs a labelled --predict_file")
      self._eval_examples = self.read_examples(False)
    return self.predict(strategy, model, global_batch, self._eval_examples)
