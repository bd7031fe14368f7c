"""Sentence (pair) classification (GLUE, XNLI): GR's run_classifier model, loss, metrics, input
pipeline and output files (eval_results.txt, test_results.tsv, GLUE submission files)."""

import dataclasses
import os
from typing import Optional

from absl import logging
import tensorflow as tf

from official_bert import models, tokenization, utils
from official_bert.data import classifier, records
from official_bert.tasks import base, classification_metrics, losses
from official_bert.training import distribute, loop


def classification_loss(features, logits, is_regression=False):
  """GR's loss: mean cross entropy (+ accuracy); STS-B: mean squared error of the score."""
  logits = tf.cast(logits, tf.float32)
  if is_regression:
    return tf.reduce_mean(tf.square(logits[:, 0] - features["label_ids"])), {}
  return (losses.mean_cross_entropy(logits, features["label_ids"]),
          {"accuracy": losses.accuracy(logits, features["label_ids"])})


# ---------------------------------------------------------------------------- input


def file_based_dataset(input_file, seq_length, batch_size, is_training, is_regression=False,
                       shuffle_buffer_size=100, seed=None, input_context=None,
                       dynamic_padding=False):
  """A tf.data pipeline over classifier TFRecords, yielding dicts of GR's features.

  Training: shuffled, repeated, full batches (remainder dropped, as GR). Eval / predict:
  records.eval_dataset (file order, one pass, the last batch padded with is_real_example=0 rows,
  GR's PaddingInputExample in-graph). batch_size is per replica; input_context
  (tf.distribute.InputContext) shards training records by replica. dynamic_padding: each batch is cut to its
  longest sequence (CPU/GPU speed; not for TPU / XLA, which want one static shape).
  """
  spec = classifier.name_to_features(seq_length, is_regression)
  if is_training:
    # Each replica reads its own 1/N of the records, whichever process it runs in.
    num_shards, shard_ids = distribute.replica_shards(input_context)
    parts = []
    for i in shard_ids:
      d = tf.data.TFRecordDataset(input_file).shard(num_shards, i)
      # Shuffle before repeat so every epoch sees every example once.
      d = d.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True).repeat()
      d = d.map(lambda r: records.decode(r, spec), num_parallel_calls=tf.data.AUTOTUNE)
      parts.append(d.batch(batch_size, drop_remainder=True))
    d = distribute.round_robin(parts)
  else:
    d = records.eval_dataset(input_file, lambda r: records.decode(r, spec), batch_size,
                             input_context)
  if dynamic_padding:
    d = d.map(records.trim_padding)
  return d.prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------- output files


def write_test_results(path, outputs):
  """GR's test_results.tsv: per example, its class probabilities (STS-B: its score), tab-separated.

  outputs: [N, L] float32 of the real examples only.
  """
  with utils.atomic_open(path, "w") as f:
    for row in outputs:
      f.write("\t".join(str(v) for v in row) + "\n")


def write_submission(path, examples, outputs, label_list):
  """A GLUE leaderboard file: `index<TAB>prediction`, the label string (STS-B: the score)."""
  with utils.atomic_open(path, "w") as f:
    f.write("index\tprediction\n")
    for i, (example, row) in enumerate(zip(examples, outputs)):
      index = example.index if example.index is not None else str(i)
      if label_list is None:
        prediction = f"{float(row[0]):.3f}"
      else:
        prediction = label_list[int(max(range(len(row)), key=lambda j: row[j]))]
      f.write(f"{index}\t{prediction}\n")


# ---------------------------------------------------------------------------- the job


@dataclasses.dataclass
class ClassificationConfig:
  """What run_classifier's flags set for the task."""
  task_name: str
  data_dir: str
  output_dir: str
  vocab_file: str
  do_lower_case: bool = True
  max_seq_length: int = 128
  xnli_language: str = "zh"
  pooling: Optional[str] = None  # None: output_dir's record, else checkpoint_pooling, else cls
  max_train_examples: Optional[int] = None
  shuffle_buffer_size: int = 100
  dynamic_padding: bool = False
  seed: int = 12345
  checkpoint_pooling: Optional[str] = None  # what the initial checkpoint records


class ClassificationTask:
  """A GLUE / XNLI task: writes {train,eval,predict}.tf_record and GR's result files."""

  def __init__(self, config: ClassificationConfig, bert_config):
    self.config = config
    kwargs = {"language": config.xnli_language} if config.task_name.lower() == "xnli" else {}
    self.processor = classifier.get_processor(config.task_name, **kwargs)
    self.label_list = self.processor.get_labels()
    self.is_regression = self.processor.is_regression
    num_labels = 1 if self.is_regression else len(self.label_list)
    self.tokenizer = tokenization.FullTokenizer(config.vocab_file, config.do_lower_case)
    self.tok_id = {"vocab_file": os.path.abspath(config.vocab_file),
                   "do_lower_case": config.do_lower_case}
    self.pooling = classifier.resolve_pooling(config.output_dir, config.pooling,
                                              checkpoint=config.checkpoint_pooling)
    logging.info("Classifier pooling: %s (--classifier_pooling=%s, initial checkpoint records "
                 "%s)", self.pooling, config.pooling, config.checkpoint_pooling)
    self.loop_task = loop.Task(
        build_model=lambda: models.BertClassifier(bert_config, num_labels, pooling=self.pooling),
        loss_fn=lambda f, logits: classification_loss(f, logits, self.is_regression),
        name=self.processor.task_name)

  def _records(self, examples, name):
    path = os.path.join(self.config.output_dir, name)
    classifier.file_based_convert_examples_to_features(
        examples, self.label_list, self.config.max_seq_length, self.tokenizer, path, self.tok_id)
    return path

  def _dataset_fn(self, path, global_batch, is_training):
    c = self.config

    def fn(ctx):
      return file_based_dataset(
          path, c.max_seq_length, ctx.get_per_replica_batch_size(global_batch), is_training,
          self.is_regression, shuffle_buffer_size=c.shuffle_buffer_size, seed=c.seed,
          input_context=ctx, dynamic_padding=c.dynamic_padding)
    return fn

  def train_data(self, global_batch):
    examples = self.processor.get_train_examples(self.config.data_dir)
    examples = examples[:self.config.max_train_examples]
    path = self._records(examples, "train.tf_record")
    logging.info("***** Running training *****\n  Num examples = %d\n  Batch size = %d",
                 len(examples), global_batch)
    classifier.record_pooling(self.config.output_dir, self.pooling)
    return self._dataset_fn(path, global_batch, True), len(examples)

  def _run_split(self, strategy, model, split, name, global_batch):
    """Writes <name>.tf_record for a split; returns (examples, {label_ids, logits})."""
    examples = self.processor.get_examples(self.config.data_dir, split)
    path = self._records(examples, f"{name}{classifier.split_suffix(split)}.tf_record")
    logging.info("***** Running %s on %s *****\n  Num examples = %d\n  Batch size = %d", name,
                 split, len(examples), global_batch)
    out = base.predict_real(
        strategy, self._dataset_fn(path, global_batch, False), model,
        predict_fn=lambda f, logits: {"logits": tf.cast(logits, tf.float32)},
        keep_features=("label_ids",), num_examples=len(examples), global_batch=global_batch,
        name=name)
    assert len(out["logits"]) == len(examples), (len(out["logits"]), len(examples))
    return examples, out

  def evaluate(self, strategy, model, global_batch):
    """GR's eval_results.txt: global_step, eval_loss and GLUE's metrics of each dev split."""
    results = {"global_step": base.global_step(self.config.output_dir)}
    for split in self.processor.eval_splits:
      _, out = self._run_split(strategy, model, split, "eval", global_batch)
      prefix = "eval" + classifier.split_suffix(split) + "_"
      results[prefix + "loss"] = classification_metrics.eval_loss(
          out["label_ids"], out["logits"], is_regression=self.is_regression)
      results.update(classification_metrics.glue_metrics(
          self.processor.task_name, out["label_ids"], out["logits"], prefix=prefix))
    logging.info("***** Eval results *****")
    base.write_eval_results(os.path.join(self.config.output_dir, "eval_results.txt"), results)
    return results

  def predict(self, strategy, model, global_batch):
    """test_results<suffix>.tsv and the GLUE submission file of each test split."""
    for split in self.processor.test_splits:
      examples, out = self._run_split(strategy, model, split, "predict", global_batch)
      logits = out["logits"]
      outputs = logits if self.is_regression else tf.nn.softmax(logits, -1).numpy()
      suffix = classifier.split_suffix(split)
      write_test_results(os.path.join(self.config.output_dir, f"test_results{suffix}.tsv"),
                         outputs)
      name = classifier.submission_name(self.processor, split)
      write_submission(os.path.join(self.config.output_dir, f"{name}.tsv"), examples, outputs,
                       self.label_list)
      logging.info("Wrote predictions of %d examples (%s)", len(examples), split)
