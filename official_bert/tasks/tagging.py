"""Tagging (NER, the BERT paper's recipe): per-token classifier, the loss over labelled words, the
input pipeline over tagging TFRecords (official_bert.data.tagging), the way back from per-position
predictions to one tag per word, CoNLL prediction files and entity-level eval results.
"""

import dataclasses
import json
import os
from typing import Optional

from absl import logging
import numpy as np
import tensorflow as tf

from official_bert import models, utils
from official_bert.data import records, tagging
from official_bert.tasks import base, losses, tagging_metrics
from official_bert.training import inputs, loop


def labelled_words_loss(features, logits):
  """Mean cross entropy over the words labelled in the batch (first sub-tokens, max context)."""
  loss, _ = losses.weighted_cross_entropy_and_accuracy(logits, features["label_ids"],
                                                       features["label_weights"])
  return loss, {}


def predict_outputs(features, logits):
  """Predicted label ids [B, S], and per window the summed word loss and number of words [B]."""
  log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))                      # [B, S, L]
  weights = tf.cast(features["label_weights"], tf.float32)                          # [B, S]
  nll = -tf.gather(log_probs, features["label_ids"], batch_dims=2)                  # [B, S]
  return {"predicted_ids": tf.argmax(log_probs, -1, output_type=tf.int32),
          "loss_sum": tf.reduce_sum(nll * weights, -1), "num_words": tf.reduce_sum(weights, -1)}


def dataset(path, seq_length, batch_size, is_training, input_context=None, seed=12345):
  """Training: the shared seeded, repeating pipeline; eval / predict: records.eval_dataset."""
  decode = tagging.decode_record(seq_length)
  if is_training:
    return inputs.tfrecord_dataset([path], decode, batch_size, True, input_context, seed=seed)
  return records.eval_dataset([path], decode, batch_size, input_context)


# ---------------------------------------------------------------------------- predictions

def word_predictions(examples, features, predicted_ids, label_list):
  """Maps per-position predictions back to words: one BIO tag for every word of every example.

  Args:
    examples: the TaggingExample list the features came from.
    features: InputFeatures from `convert_examples_to_features`.
    predicted_ids: {unique_id: [S] predicted label ids} (or [S, L] logits / probabilities).
    label_list: the BIO label list.

  Returns:
    A list (one per example) of lists of BIO tags (one per word).

  Raises:
    ValueError if some word got no prediction or two (a bug, or predictions missing).
  """
  tags = [[None] * len(ex.words) for ex in examples]
  for feature in features:
    if feature.unique_id not in predicted_ids:
      raise ValueError(f"no prediction for feature unique_id={feature.unique_id}")
    ids = np.asarray(predicted_ids[feature.unique_id])
    if ids.ndim == 2:  # [S, L] scores
      ids = ids.argmax(axis=-1)
    for position, (ex_index, word_index) in feature.word_positions.items():
      if tags[ex_index][word_index] is not None:
        raise ValueError(f"{examples[ex_index].source}:"
                         f"{examples[ex_index].line_numbers[word_index]}: predicted twice")
      tags[ex_index][word_index] = label_list[int(ids[position])]
  for ex, ex_tags in zip(examples, tags):
    for word_index, tag in enumerate(ex_tags):
      if tag is None:
        raise ValueError(f"{ex.source}:{ex.line_numbers[word_index]}: word "
                         f"{ex.words[word_index]!r} got no prediction")
  return tags


def write_conll_predictions(path, examples, predicted_tags):
  """Writes `word gold predicted` lines (conlleval's input; `word predicted` without gold).

  Tags are written as given (convert with `from_bio` first to report in the file's scheme).
  """
  with utils.atomic_open(path, "w") as f:
    for ex, pred in zip(examples, predicted_tags):
      if ex.starts_document:
        f.write(f"{tagging.DOCSTART} O{' O' if ex.labels is not None else ''}\n\n")
      for i, word in enumerate(ex.words):
        gold = f" {ex.labels[i]}" if ex.labels is not None else ""
        f.write(f"{word}{gold} {pred[i]}\n")
      f.write("\n")

# ---------------------------------------------------------------------------- the job

LABEL_FILE = "label_list.txt"


@dataclasses.dataclass
class TaggingConfig:
  """What run_ner's flags set for the task; a file is None when its mode is off."""
  output_dir: str
  train_file: Optional[str] = None
  eval_file: Optional[str] = None
  predict_file: Optional[str] = None
  label_scheme: str = "iob1"
  max_seq_length: int = 128
  do_lower_case: bool = True
  document_context: bool = False
  doc_stride: int = 0  # 0: half a window
  seed: int = 12345


class TaggingTask:
  """NER on CoNLL files. Training writes label_list.txt (read back by eval / predict runs)."""

  def __init__(self, config: TaggingConfig, bert_config, tokenizer):
    self.config = config
    self.tokenizer = tokenizer
    label_file = os.path.join(config.output_dir, LABEL_FILE)
    self.train_examples = None
    if config.train_file:
      self.train_examples = tagging.read_conll(config.train_file, config.label_scheme)
      self.label_list = tagging.get_labels(self.train_examples)
      tagging.write_label_list(label_file, self.label_list)
      with utils.atomic_open(os.path.join(config.output_dir, "ner_config.json")) as f:
        json.dump({k: getattr(config, k) for k in ("label_scheme", "max_seq_length",
                                                    "do_lower_case", "document_context",
                                                    "doc_stride")}, f, indent=2)
    elif not tf.io.gfile.exists(label_file):
      raise ValueError(f"{label_file} not found: eval / predict without --do_train need the "
                       "output_dir of a training run (its label_list.txt and checkpoint)")
    else:
      self.label_list = tagging.read_label_list(label_file)
    logging.info("Labels: %s", self.label_list)
    self.loop_task = loop.Task(
        build_model=lambda: models.BertTokenClassifier(bert_config, len(self.label_list)),
        loss_fn=labelled_words_loss, name="ner")

  def _features(self, path, examples=None):
    c = self.config
    if examples is None:
      examples = tagging.read_conll(path, c.label_scheme)
    features = tagging.convert_examples_to_features(
        examples, self.label_list, c.max_seq_length, self.tokenizer, c.label_scheme,
        c.doc_stride or None, c.document_context)
    logging.info("%s: %d sentences, %d words -> %d windows of %d", path, len(examples),
                 sum(len(e.words) for e in examples), len(features), c.max_seq_length)
    for f in features[:2]:  # GR's "*** Example ***" log: what the model sees, where labels sit
      logging.info("*** Example %d ***\ntokens: %s\nlabels: %s", f.unique_id, " ".join(f.tokens),
                   " ".join(self.label_list[f.label_ids[p]] if f.label_weights[p] else "-"
                            for p in range(len(f.tokens))))
    return examples, features

  def _dataset_fn(self, path, global_batch, is_training):
    c = self.config
    return lambda ctx: dataset(path, c.max_seq_length, ctx.get_per_replica_batch_size(global_batch),
                               is_training, ctx, seed=c.seed)

  def train_data(self, global_batch):
    """Epochs count the windows."""
    _, features = self._features(self.config.train_file, self.train_examples)
    path = os.path.join(self.config.output_dir, "train.tf_record")
    tagging.write_features(features, path)
    return self._dataset_fn(path, global_batch, True), len(features)

  def tag_file(self, split, strategy, model, global_batch):
    """Predicts every word of the eval / predict file; writes <eval|test>_predictions.txt and,
    when the file has gold tags, <eval|test>_results.txt."""
    c = self.config
    path = c.eval_file if split == "eval" else c.predict_file
    examples, features = self._features(path)
    record_file = os.path.join(c.output_dir, f"{split}.tf_record")
    tagging.write_features(features, record_file)
    out = base.predict_real(strategy, self._dataset_fn(record_file, global_batch, False), model,
                            predict_outputs, keep_features=("unique_id",),
                            num_examples=len(features), global_batch=global_batch, name=split)
    predicted = dict(zip(out["unique_id"].tolist(), out["predicted_ids"]))
    tags = word_predictions(examples, features, predicted, self.label_list)
    tags = [tagging.from_bio(t, c.label_scheme) for t in tags]
    name = "eval" if split == "eval" else "test"
    write_conll_predictions(os.path.join(c.output_dir, f"{name}_predictions.txt"), examples, tags)
    if not examples or examples[0].labels is None:
      return None
    scores = tagging_metrics.entity_scores([e.labels for e in examples], tags)
    results = os.path.join(c.output_dir, f"{name}_results.txt")
    eval_loss = float(out["loss_sum"].sum()) / max(float(out["num_words"].sum()), 1)
    tagging_metrics.write_eval_results(results, scores, {"eval_loss": eval_loss})
    logging.info("%s: entity F1 %.2f (P %.2f R %.2f) -> %s", path, 100 * scores["f1"],
                 100 * scores["precision"], 100 * scores["recall"], results)
    return dict(scores, eval_loss=eval_loss)

  def evaluate(self, strategy, model, global_batch):
    """Entity scores of the eval file as eval_<name> (for periodic evaluation)."""
    scores = self.tag_file("eval", strategy, model, global_batch)
    if scores is None:
      raise ValueError(f"{self.config.eval_file} has no gold tags to evaluate against")
    scores = dict(scores)
    text = tagging_metrics.format_eval_results(scores, {"eval_loss": scores.pop("eval_loss")})
    # The numbers of eval_results.txt (F1 etc. in percent), as floats.
    return {k: float(v) for k, v in (line.split(" = ") for line in text.splitlines())}
