"""Sentence (pair) classification data: GLUE / XNLI TSVs -> examples -> features -> TFRecords.

The record format is GR's `run_classifier.py` one (`input_ids`, `input_mask`, `segment_ids`,
`label_ids`, `is_real_example`), so files written by GR and by us read the same. For the
regression task (STS-B) `label_ids` holds a float. This module writes it and defines its parsing
spec; the task's input pipeline and result files are official_bert.tasks.classification.

Processors read the standard GLUE download layout (`glue_data/<TASK>/{train,dev,test}.tsv`) and
GR's XNLI layout. A row whose column count differs from the header's, an unknown label, bytes that
are not UTF-8 or an oversized field is an error naming file and line; so is a file without rows.
"""

import csv
import dataclasses
import hashlib
import json
import os
from typing import Optional, Union

from absl import logging
import tensorflow as tf

from official_bert import errors
from official_bert import utils
from official_bert.data import records


@dataclasses.dataclass
class InputExample:
  """A single train/dev/test example.

  guid: unique id (GR's scheme, e.g. "dev-3"). text_a / text_b: untokenized sentences (text_b
  None for single-sentence tasks). label: a label string, a float for regression, or a dummy
  label for test examples (as GR). index: the `index` / `id` column of a GLUE test file, used
  as the id in GLUE submission files (None where the file has none). document: the text's
  source where the file names one (CoLA's first column), so that a pre-training corpus made from
  the train set keeps each source's sentences together.
  """
  guid: str
  text_a: str
  text_b: Optional[str] = None
  label: Union[str, float, None] = None
  index: Optional[str] = None
  document: Optional[str] = None


class PaddingInputExample:
  """Fake example that pads a set to a multiple of the batch size (GR); it gets is_real_example=0."""


@dataclasses.dataclass
class InputFeatures:
  """Features of one example, GR's names; lists of length max_seq_length."""
  input_ids: list
  input_mask: list
  segment_ids: list
  label_id: Union[int, float]
  is_real_example: bool = True


# ----------------------------------------------------------------------------------------------
# Processors
# ----------------------------------------------------------------------------------------------


def read_tsv(input_file, quotechar=None):
  """Rows of a tab-separated file as (line_number, fields) pairs, line numbers from 1.

  Like GR, quotechar=None: a `"` is an ordinary character (GLUE files are not CSV-quoted). Bytes
  that are not UTF-8 or a field over utils.MAX_FIELD_CHARS characters are errors naming file:line.
  """
  if not tf.io.gfile.exists(input_file):
    raise FileNotFoundError(
        f"{input_file} does not exist; --data_dir must be the task's folder of the standard "
        "GLUE download (e.g. glue_data/MRPC)")
  lines = (line for _, line in utils.read_lines(
      input_file, "TSV file", "give the task's file from the standard GLUE download"))
  reader = csv.reader(lines, delimiter="\t", quotechar=quotechar)
  try:
    return [(reader.line_num, line) for line in reader]
  except csv.Error as e:
    raise errors.UserError(f"not a valid tab-separated row ({e})",
                           errors.at(input_file, reader.line_num),
                           "give the task's file from the standard GLUE download") from None


class DataProcessor:
  """Reads one task's files into InputExamples.

  Subclasses set `task_name` (GR's --task_name), `submission_name` (the GLUE leaderboard file),
  `labels` (None for regression) and `files` (split -> file name), and parse rows in
  `_create_example`. `eval_splits` / `test_splits` list the splits evaluated / predicted
  ("dev" / "test" first; MNLI adds the mismatched ones).
  """
  task_name = None
  submission_name = None
  labels = None
  files = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
  has_header = True
  eval_splits = ("dev",)
  test_splits = ("test",)
  single_sentence = False  # CoLA, SST-2: text_b is None
  columns = None  # the column count of a file without header (else the header's count)

  @property
  def is_regression(self):
    return self.labels is None

  def get_labels(self):
    """The label strings in label-id order (None for regression)."""
    return None if self.labels is None else list(self.labels)

  def get_train_examples(self, data_dir):
    return self.get_examples(data_dir, "train")

  def get_dev_examples(self, data_dir):
    return self.get_examples(data_dir, "dev")

  def get_test_examples(self, data_dir):
    return self.get_examples(data_dir, "test")

  def get_examples(self, data_dir, split):
    """Examples of `split` (a key of `files`) under `data_dir`."""
    if split not in self.files:
      raise ValueError(f"task {self.task_name!r} has no split {split!r}; "
                       f"it has {sorted(self.files)}")
    path = os.path.join(data_dir, self.files[split])
    set_type = split.split("_")[0]  # "dev_mismatched" -> "dev"
    examples = []
    rows = read_tsv(path)
    has_header = self._skips_header(set_type)
    # Every row has the header's columns: a tab inside a sentence must not shift the columns
    # silently (GR would read half a sentence as text_b).
    columns = len(rows[0][1]) if rows and has_header else self.columns
    for i, (lineno, line) in enumerate(rows):
      if i == 0 and has_header:
        continue
      row = _Row(line, path, lineno)
      example = self._create_example(row, set_type, split, i)
      if columns is not None and len(line) != columns:
        row.fail(f"found {len(line)} tab-separated columns, expected {columns} (as "
                 f"{'the header' if has_header else 'every row of this file'}); a tab inside a "
                 "sentence?")
      if example is not None:
        examples.append(example)
    if not examples:
      raise errors.UserError(f"no {split} examples", path,
                             "the file is empty; give the task's file from the standard GLUE "
                             "download")
    return examples

  def _skips_header(self, set_type):
    del set_type
    return self.has_header

  def _create_example(self, row, set_type, split, i):
    raise NotImplementedError

  def _label(self, row, col, set_type):
    """The label in column `col` (checked against `labels`), or GR's dummy label for test rows."""
    if set_type == "test":
      return 0.0 if self.is_regression else self.labels[0]
    value = row[col]
    if self.is_regression:
      try:
        return float(value)
      except ValueError:
        row.fail(f"the score {value!r} in column {_col(col)} is not a number")
    if value not in self.labels:
      row.fail(f"unknown label {value!r} in column {_col(col)}; "
               f"{self.task_name} labels are {list(self.labels)}")
    return value


def _col(col):
  return "last" if col == -1 else col + 1


class _Row:
  """A TSV row whose field access names the file and line when the row is too short."""

  def __init__(self, fields, path, lineno):
    self.fields, self.path, self.lineno = fields, path, lineno

  def fail(self, message):
    raise errors.UserError(message, errors.at(self.path, self.lineno),
                           "check that the file is the task's file from the standard GLUE "
                           "download, unmodified")

  def need(self, n):
    if len(self.fields) < n:
      self.fail(f"expected at least {n} tab-separated columns, found {len(self.fields)}")
    return self

  def __getitem__(self, col):
    self.need(col + 1 if col >= 0 else 1)
    return self.fields[col]


class _PairProcessor(DataProcessor):
  """GLUE's `index sentence1 sentence2 [label]` layout (QNLI, RTE, WNLI)."""

  def _create_example(self, row, set_type, split, i):
    row.need(3 if set_type == "test" else 4)
    return InputExample(guid=f"{set_type}-{row[0]}", text_a=row[1], text_b=row[2],
                        label=self._label(row, -1, set_type),
                        index=row[0] if set_type == "test" else None)


class ColaProcessor(DataProcessor):
  """CoLA (GLUE): train/dev `source label original_label sentence` without header; test has one."""
  task_name, submission_name, labels = "cola", "CoLA", ("0", "1")
  single_sentence = True
  columns = 4

  def _skips_header(self, set_type):
    return set_type == "test"  # as GR: only the test file has a header

  def _create_example(self, row, set_type, split, i):
    if set_type == "test":
      return InputExample(guid=f"test-{i}", text_a=row[1], label="0", index=row[0])
    row.need(4)
    return InputExample(guid=f"{set_type}-{i}", text_a=row[3],
                        label=self._label(row, 1, set_type), document=row[0])


class Sst2Processor(DataProcessor):
  """SST-2 (GLUE): `sentence label`; test `index sentence`."""
  task_name, submission_name, labels = "sst2", "SST-2", ("0", "1")
  single_sentence = True

  def _create_example(self, row, set_type, split, i):
    if set_type == "test":
      return InputExample(guid=f"test-{i}", text_a=row[1], label="0", index=row[0])
    return InputExample(guid=f"{set_type}-{i}", text_a=row[0],
                        label=self._label(row, 1, set_type))


class MrpcProcessor(DataProcessor):
  """MRPC (GLUE): `Quality #1_ID #2_ID #1_String #2_String`; test has `index` for Quality."""
  task_name, submission_name, labels = "mrpc", "MRPC", ("0", "1")

  def _create_example(self, row, set_type, split, i):
    row.need(5)
    return InputExample(guid=f"{set_type}-{i}", text_a=row[3], text_b=row[4],
                        label=self._label(row, 0, set_type),
                        index=row[0] if set_type == "test" else None)


class StsbProcessor(DataProcessor):
  """STS-B (GLUE), regression on a 0-5 score: `index genre filename year old_index source1
  source2 sentence1 sentence2 score`; test lacks the score."""
  task_name, submission_name, labels = "stsb", "STS-B", None

  def _create_example(self, row, set_type, split, i):
    row.need(9 if set_type == "test" else 10)
    return InputExample(guid=f"{set_type}-{row[0]}", text_a=row[7], text_b=row[8],
                        label=self._label(row, 9, set_type),
                        index=row[0] if set_type == "test" else None)


class QqpProcessor(DataProcessor):
  """QQP (GLUE): `id qid1 qid2 question1 question2 is_duplicate`; test `id question1 question2`."""
  task_name, submission_name, labels = "qqp", "QQP", ("0", "1")

  def _create_example(self, row, set_type, split, i):
    if set_type == "test":
      row.need(3)
      return InputExample(guid=f"test-{row[0]}", text_a=row[1], text_b=row[2], label="0",
                          index=row[0])
    row.need(6)
    return InputExample(guid=f"{set_type}-{row[0]}", text_a=row[3], text_b=row[4],
                        label=self._label(row, 5, set_type))


class MnliProcessor(DataProcessor):
  """MultiNLI (GLUE): sentences in columns 9-10, gold label last; matched and mismatched splits."""
  task_name, labels = "mnli", ("contradiction", "entailment", "neutral")
  files = {"train": "train.tsv", "dev": "dev_matched.tsv", "test": "test_matched.tsv",
           "dev_mismatched": "dev_mismatched.tsv", "test_mismatched": "test_mismatched.tsv"}
  eval_splits = ("dev", "dev_mismatched")
  test_splits = ("test", "test_mismatched")
  submission_names = {"test": "MNLI-m", "test_mismatched": "MNLI-mm"}

  def _create_example(self, row, set_type, split, i):
    row.need(10 if set_type == "test" else 11)
    # GR's guid: "dev_matched-<index>" for the dev split.
    gr_set = {"dev": "dev_matched", "dev_mismatched": "dev_mismatched"}.get(split, set_type)
    return InputExample(guid=f"{gr_set}-{row[0]}", text_a=row[8], text_b=row[9],
                        label=self._label(row, -1, set_type),
                        index=row[0] if set_type == "test" else None)


class QnliProcessor(_PairProcessor):
  """QNLI (GLUE): `index question sentence label`."""
  task_name, submission_name, labels = "qnli", "QNLI", ("entailment", "not_entailment")


class RteProcessor(_PairProcessor):
  """RTE (GLUE): `index sentence1 sentence2 label`."""
  task_name, submission_name, labels = "rte", "RTE", ("entailment", "not_entailment")


class WnliProcessor(_PairProcessor):
  """WNLI (GLUE): `index sentence1 sentence2 label`."""
  task_name, submission_name, labels = "wnli", "WNLI", ("0", "1")


class XnliProcessor(DataProcessor):
  """XNLI as GR has it: train is XNLI-MT's `multinli/multinli.train.<lang>.tsv` (premise, hypo,
  label), dev / test are `xnli.{dev,test}.tsv` filtered to one language (GR: "zh")."""
  task_name, submission_name = "xnli", "XNLI"
  labels = ("contradiction", "entailment", "neutral")

  def __init__(self, language="zh"):
    self.language = language
    self.files = {"train": os.path.join("multinli", f"multinli.train.{language}.tsv"),
                  "dev": "xnli.dev.tsv", "test": "xnli.test.tsv"}

  def _create_example(self, row, set_type, split, i):
    if set_type == "train":
      row.need(3)
      label = "contradiction" if row[2] == "contradictory" else row[2]  # XNLI-MT's spelling
      if label not in self.labels:
        row.fail(f"unknown label {row[2]!r} in column 3; XNLI labels are {list(self.labels)}")
      return InputExample(guid=f"train-{i}", text_a=row[0], text_b=row[1], label=label)
    row.need(8)
    if row[0] != self.language:
      return None
    # Unlike MNLI, XNLI's test file carries gold labels: keep them so test can be scored too.
    return InputExample(guid=f"{set_type}-{i}", text_a=row[6], text_b=row[7],
                        label=self._label(row, 1, "dev"),
                        index=str(i) if set_type == "test" else None)


PROCESSORS = {
    "cola": ColaProcessor, "sst2": Sst2Processor, "sst-2": Sst2Processor,
    "mrpc": MrpcProcessor, "stsb": StsbProcessor, "sts-b": StsbProcessor,
    "qqp": QqpProcessor, "mnli": MnliProcessor, "qnli": QnliProcessor, "rte": RteProcessor,
    "wnli": WnliProcessor, "xnli": XnliProcessor,
}


def get_processor(task_name, **kwargs):
  """The processor of GR's --task_name (case-insensitive)."""
  name = (task_name or "").lower()
  if name not in PROCESSORS:
    raise ValueError(f"--task_name={task_name!r} is not a known task; choose one of "
                     f"{sorted(PROCESSORS)}")
  return PROCESSORS[name](**kwargs)


def submission_name(processor, split):
  """The GLUE leaderboard file stem of a test split, e.g. "MNLI-mm"."""
  return getattr(processor, "submission_names", {}).get(split, processor.submission_name)


def split_suffix(split):
  """"dev"/"test"/"train" -> "", "dev_mismatched" -> "_mismatched" (for file and metric names)."""
  return split[split.index("_"):] if "_" in split else ""


# ----------------------------------------------------------------------------------------------
# Examples -> features (GR's convert_single_example)
# ----------------------------------------------------------------------------------------------


def truncate_seq_pair(tokens_a, tokens_b, max_length):
  """GR's `_truncate_seq_pair`: pops from the longer list (ties: tokens_b) until they fit, in place."""
  # One token at a time from the longer one: a short sentence keeps all its tokens.
  while len(tokens_a) + len(tokens_b) > max_length:
    if len(tokens_a) > len(tokens_b):
      tokens_a.pop()
    else:
      tokens_b.pop()


def convert_single_example(ex_index, example, label_list, max_seq_length, tokenizer):
  """One InputExample -> InputFeatures, as GR: `[CLS] a [SEP] (b [SEP])`, zero-padded.

  label_list: label strings in id order, or None for regression (the label is a float).
  tokenizer: has `tokenize(text)` and `convert_tokens_to_ids(tokens)` (GR's FullTokenizer API).
  """
  if isinstance(example, PaddingInputExample):
    zeros = [0] * max_seq_length
    return InputFeatures(input_ids=zeros, input_mask=list(zeros), segment_ids=list(zeros),
                         label_id=0.0 if label_list is None else 0, is_real_example=False)

  tokens_a = tokenizer.tokenize(example.text_a)
  tokens_b = tokenizer.tokenize(example.text_b) if example.text_b else None
  if tokens_b:
    truncate_seq_pair(tokens_a, tokens_b, max_seq_length - 3)  # [CLS], [SEP], [SEP]
  else:
    tokens_a = tokens_a[:max_seq_length - 2]  # [CLS], [SEP]

  tokens = ["[CLS]"] + tokens_a + ["[SEP]"]
  segment_ids = [0] * len(tokens)
  if tokens_b:
    tokens += tokens_b + ["[SEP]"]
    segment_ids += [1] * (len(tokens_b) + 1)
  input_ids = list(tokenizer.convert_tokens_to_ids(tokens))
  input_mask = [1] * len(input_ids)
  pad = max_seq_length - len(input_ids)
  input_ids += [0] * pad
  input_mask += [0] * pad
  segment_ids += [0] * pad

  if label_list is None:
    label_id = float(example.label)
  else:
    if example.label not in label_list:
      raise ValueError(f"example {example.guid}: label {example.label!r} is not one of {label_list}")
    label_id = label_list.index(example.label)
  if ex_index < 5:
    logging.info("*** Example ***\nguid: %s\ntokens: %s\ninput_ids: %s\ninput_mask: %s\n"
                 "segment_ids: %s\nlabel: %s (id = %s)", example.guid, " ".join(tokens),
                 " ".join(map(str, input_ids)), " ".join(map(str, input_mask)),
                 " ".join(map(str, segment_ids)), example.label, label_id)
  return InputFeatures(input_ids=input_ids, input_mask=input_mask, segment_ids=segment_ids,
                       label_id=label_id, is_real_example=True)


def convert_examples_to_features(examples, label_list, max_seq_length, tokenizer):
  """A list of InputExamples (or PaddingInputExamples) -> a list of InputFeatures."""
  return [convert_single_example(i, ex, label_list, max_seq_length, tokenizer)
          for i, ex in enumerate(examples)]


# ----------------------------------------------------------------------------------------------
# TFRecord format (GR's)
# ----------------------------------------------------------------------------------------------


def features_to_tf_example(feature):
  """InputFeatures -> a serialized tf.train.Example with GR's keys."""
  label = (records.float_feature if isinstance(feature.label_id, float) else
           records.int_feature)([feature.label_id])
  return records.serialize({
      "input_ids": records.int_feature(feature.input_ids),
      "input_mask": records.int_feature(feature.input_mask),
      "segment_ids": records.int_feature(feature.segment_ids),
      "label_ids": label,
      "is_real_example": records.int_feature([int(feature.is_real_example)]),
  })


def _examples_fingerprint(examples, label_list, max_seq_length, tokenizer_id):
  h = hashlib.sha1()
  for ex in examples:
    h.update(repr((ex.guid, ex.text_a, ex.text_b, ex.label) if isinstance(ex, InputExample)
                  else "<pad>").encode("utf-8"))
  return {"num_examples": len(examples), "examples_sha1": h.hexdigest(),
          "label_list": label_list, "max_seq_length": max_seq_length, "tokenizer": tokenizer_id}


def file_based_convert_examples_to_features(examples, label_list, max_seq_length, tokenizer,
                                            output_file, tokenizer_id=None):
  """Writes the examples' features to a TFRecord file (atomically); returns the record count.

  tokenizer_id: when given (e.g. {"vocab_file": ..., "do_lower_case": ...}), a sidecar
  `<output_file>.json` records what the file was made from, and a later call with the same
  examples and settings reuses the file instead of tokenizing again (GR always rewrote it).
  """
  meta_file = output_file + ".json"
  meta = None
  if tokenizer_id is not None:
    meta = _examples_fingerprint(examples, label_list, max_seq_length, tokenizer_id)
    if tf.io.gfile.exists(output_file) and tf.io.gfile.exists(meta_file):
      with tf.io.gfile.GFile(meta_file, "r") as f:
        try:
          cached = json.load(f)
        except json.JSONDecodeError:
          cached = None
      if cached == json.loads(json.dumps(meta)):
        logging.info("Reusing %s (%d examples, same data and settings)", output_file,
                     len(examples))
        return len(examples)
  with utils.atomic_path(output_file) as tmp:
    with tf.io.TFRecordWriter(tmp) as writer:
      for i, example in enumerate(examples):
        if i % 10000 == 0:
          logging.info("Writing example %d of %d to %s", i, len(examples), output_file)
        writer.write(features_to_tf_example(
            convert_single_example(i, example, label_list, max_seq_length, tokenizer)))
  if meta is not None:
    with utils.atomic_open(meta_file, "w") as f:
      json.dump(meta, f, indent=1, sort_keys=True)
  return len(examples)


def name_to_features(seq_length, is_regression=False):
  """The tf.io parsing spec of GR's classifier records."""
  spec = records.int_spec(("input_ids", "input_mask", "segment_ids"), seq_length,
                          ("is_real_example",))
  spec["label_ids"] = tf.io.FixedLenFeature([], tf.float32 if is_regression else tf.int64)
  return spec


# ----------------------------------------------------------------------------------------------
# The classifier head's pooling (not in the checkpoint: both poolings have the same variables)
# ----------------------------------------------------------------------------------------------

POOLING_FILE = "classifier_pooling.txt"


# sentence-transformers' Pooling module config keys -> our pooling (the ones BertClassifier has).
_ST_POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}


def _recorded_pooling(model_dir):
  path = os.path.join(model_dir, POOLING_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path, "r") as f:
    return f.read().strip() or None


def folder_pooling(folder):
  """The pooling a checkpoint folder says its model was trained with, or None: a
  sentence-transformers Pooling module (modules.json, else 1_Pooling/config.json) with exactly
  one mode we have, else the `classifier_pooling.txt` that convert_checkpoint or a fine-tuning
  run writes."""
  pooling_dir = "1_Pooling"
  modules = os.path.join(folder, "modules.json")
  if tf.io.gfile.exists(modules):
    with tf.io.gfile.GFile(modules) as f:
      pooling_dir = next((m.get("path", "") for m in json.load(f)
                          if m.get("type", "").endswith("models.Pooling")), pooling_dir)
  config = os.path.join(folder, pooling_dir, "config.json")
  if tf.io.gfile.exists(config):
    with tf.io.gfile.GFile(config) as f:
      modes = {k for k, v in json.load(f).items() if k.startswith("pooling_mode_") and v is True}
    if len(modes) == 1 and next(iter(modes)) in _ST_POOLING_MODES:
      return _ST_POOLING_MODES[modes.pop()]
    logging.warning("%s: pooling %s; the classifier head has only %s", config, sorted(modes),
                    sorted(_ST_POOLING_MODES.values()))
    return None
  return _recorded_pooling(folder)


def checkpoint_pooling(init_checkpoint):
  """folder_pooling of the folder an --init_checkpoint (pip: package, preset name, folder or
  checkpoint prefix) lives in; None when it records none."""
  if not init_checkpoint:
    return None
  from official_bert import checkpoints  # pylint: disable=import-outside-toplevel
  path = checkpoints.resolve_pretrained(init_checkpoint)
  folder = path if tf.io.gfile.isdir(path) and not tf.io.gfile.exists(path + ".index") else (
      os.path.dirname(path))
  return folder_pooling(folder)


def resolve_pooling(model_dir, flag_value, flag_name="classifier_pooling", checkpoint=None):
  """The pooling a fine-tuned model in `model_dir` needs: the value recorded there by training
  (`classifier_pooling.txt`), else `flag_value`, else `checkpoint` (what the initial checkpoint
  was trained with: checkpoint_pooling), else "cls" (GR's). A flag that contradicts the record
  is an error (the outputs would be silently wrong)."""
  recorded = _recorded_pooling(model_dir)
  if recorded and flag_value and recorded != flag_value:
    path = os.path.join(model_dir, POOLING_FILE)
    raise ValueError(f"--{flag_name}={flag_value}, but the model in {model_dir} was trained with "
                     f"{recorded!r} ({path}): pass --{flag_name}={recorded} or leave it unset")
  return recorded or flag_value or checkpoint or "cls"


def record_pooling(model_dir, pooling):
  """Writes `classifier_pooling.txt` in model_dir (read back by resolve_pooling)."""
  with utils.atomic_open(os.path.join(model_dir, POOLING_FILE), "w") as f:
    f.write(pooling + "\n")
