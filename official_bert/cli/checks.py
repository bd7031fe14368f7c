"""Flag checks shared by every entry point, run by `cli.run` before the job's main.

A flag is checked if the job defines it: positive sizes and rates, probabilities in range,
max_seq_length large enough for [CLS] / [SEP] and within the model's max_position_embeddings,
--layers within the model, inputs that exist, a vocab with the special tokens the job needs and
not larger than the model's vocab_size, and an output folder that holds no other model's config.
A failed check raises errors.UserError naming the flag; nothing heavy has run yet.
"""

import os

from absl import logging

from official_bert import errors

# Flags that must be > 0 when the job defines them (name -> what it is).
POSITIVE = {
    "train_batch_size": "the training batch size", "eval_batch_size": "the eval batch size",
    "predict_batch_size": "the predict batch size", "batch_size": "the batch size",
    "learning_rate": "the learning rate", "max_predictions_per_seq": "the masked positions",
    "dupe_factor": "the number of duplications", "gradient_accumulation_steps":
    "the micro-batch count", "iterations_per_loop": "the steps per loop",
    "save_checkpoints_steps": "the checkpoint interval", "keep_checkpoint_max":
    "the number of checkpoints kept", "n_best_size": "the n-best size",
    "max_answer_length": "the answer length", "max_query_length": "the query length",
    "xla_bucket": "the XLA length bucket",
    "chunk_chars": "the chunk size", "max_eval_steps": "the eval steps",
}
# Flags that must be > 0 when set (their default None means "all" / "automatic").
POSITIVE_IF_SET = {"steps_per_loop": "the steps per loop", "output_shards": "the shard count",
                   "max_train_examples": "the example count"}
# (--num_workers=0: one worker per core.)
NON_NEGATIVE = {"num_warmup_steps": "the warm-up steps", "num_train_steps": "the training steps",
                "num_workers": "the worker count",
                "doc_stride": "the window stride", "num_train_epochs": "the epoch count"}
# name -> (low, high, low inclusive?)
RANGES = {"warmup_proportion": (0.0, 1.0, True), "masked_lm_prob": (0.0, 1.0, False),
          "short_seq_prob": (0.0, 1.0, True), "layerwise_lr_decay": (0.0, 1.0, False)}
# [CLS] + one token of each of 2 segments + 2 [SEP]: the least GR's pair layouts can hold.
MIN_SEQ_LENGTH = 5
# Jobs that build [CLS] ... [SEP] inputs, and the one that also masks.
FINE_TUNING_JOBS = ("run_classifier", "run_squad", "run_ner", "extract_features",
                    "export_savedmodel")
PRETRAINING_DATA_JOBS = ("create_pretraining_data",)
# Jobs whose output_dir receives the model's bert_config.json (and checkpoints of that model).
TRAINING_JOBS = ("run_pretraining", "run_classifier", "run_squad", "run_ner")


def _value(flags_obj, name):
  return flags_obj[name].value if name in flags_obj else None


def _fail(what, name, value, fix):
  raise errors.UserError(what, errors.flag(name, value), fix)


def check_numbers(flags_obj):
  """Sizes, rates and probabilities in range."""
  for table, test, rule in ((POSITIVE, lambda v: v > 0, "must be > 0"),
                            (POSITIVE_IF_SET, lambda v: v > 0, "must be > 0"),
                            (NON_NEGATIVE, lambda v: v >= 0, "must be >= 0")):
    for name, what in table.items():
      value = _value(flags_obj, name)
      if value is not None and not test(value):
        _fail(f"{what} {rule}", name, value, f"pass a value that {rule.replace('must be ', 'is ')}")
  for name, (low, high, low_inclusive) in RANGES.items():
    value = _value(flags_obj, name)
    if value is not None and not ((low <= value if low_inclusive else low < value)
                                  and value <= high):
      _fail(f"must be in {'[' if low_inclusive else '('}{low}, {high}]", name, value,
            "pass a value in that range")
  if "max_query_length" in flags_obj and _value(flags_obj, "doc_stride") == 0:  # SQuAD windows
    _fail("the window stride must be > 0", "doc_stride", 0, "pass e.g. --doc_stride=128")
  accumulation = _value(flags_obj, "gradient_accumulation_steps")
  batch = _value(flags_obj, "train_batch_size")
  if accumulation and batch and batch > 0 and batch % accumulation:
    _fail(f"the training batch of {batch} does not split into {accumulation} equal micro-batches",
          "gradient_accumulation_steps", accumulation,
          "pass a divisor of --train_batch_size")


def load_config(flags_obj):
  """The BertConfig of --bert_config_file, or None if the job has none."""
  path = _value(flags_obj, "bert_config_file")
  if not path:
    return None
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from official_bert import configs  # pylint: disable=import-outside-toplevel
  if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
    _fail("file not found", "bert_config_file", path, "give the model's bert_config.json")
  try:
    return configs.BertConfig.from_json_file(path)
  except (ValueError, TypeError, KeyError) as e:
    raise errors.UserError(f"not a BERT config ({e})", errors.flag("bert_config_file", path),
                           "give the model's bert_config.json") from None


def check_lengths(flags_obj, config):
  """max_seq_length large enough and within the model; --layers within the model."""
  max_seq_length = _value(flags_obj, "max_seq_length")
  if max_seq_length is not None:
    if max_seq_length < MIN_SEQ_LENGTH:
      _fail(f"the sequence length must be at least {MIN_SEQ_LENGTH} ([CLS], two [SEP] and a "
            "token of each segment)", "max_seq_length", max_seq_length,
            "pass e.g. --max_seq_length=128")
    if config is not None and max_seq_length > config.max_position_embeddings:
      _fail(f"longer than the model's max_position_embeddings={config.max_position_embeddings}",
            "max_seq_length", max_seq_length,
            f"pass --max_seq_length={config.max_position_embeddings} or less")
  predictions = _value(flags_obj, "max_predictions_per_seq")
  if max_seq_length and predictions and predictions > max_seq_length:
    _fail(f"more masked positions than --max_seq_length={max_seq_length}",
          "max_predictions_per_seq", predictions, "pass a smaller value (GR: 20 for 128)")
  layers = _value(flags_obj, "layers")
  if layers is not None and config is not None:
    n = config.num_hidden_layers
    try:
      indexes = [int(x) for x in str(layers).split(",") if x.strip()]
    except ValueError:
      _fail("not a comma-separated list of integers", "layers", layers, "e.g. --layers=-1,-2")
    for i in indexes:
      if not -n <= i < n:
        _fail(f"layer {i} is outside the model's {n} layers", "layers", layers,
              f"use indexes from {-n} to {n - 1} (-1 is the last layer)")


def _exists(path):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.gfile.exists(path)


def check_inputs(flags_obj, job):
  """Inputs that must exist, and what the job needs of the vocab."""
  data_dir = _value(flags_obj, "data_dir")
  if data_dir and not _exists(data_dir):
    _fail("folder not found", "data_dir", data_dir, "give the folder of the task's data files")
  init = _value(flags_obj, "init_checkpoint")
  if init:
    from official_bert import checkpoints  # pylint: disable=import-outside-toplevel
    init = checkpoints.resolve_pretrained(init)  # a preset name -> its files
  if init and not (_exists(init) or _exists(init + ".index")):
    _fail("no such checkpoint", "init_checkpoint", init,
          "give a checkpoint prefix (e.g. bert_model.ckpt) or a folder holding checkpoints")
  vocab_file = _value(flags_obj, "vocab_file")
  if not vocab_file or job not in FINE_TUNING_JOBS + PRETRAINING_DATA_JOBS:
    return None
  from official_bert import tokenization  # pylint: disable=import-outside-toplevel
  vocab = tokenization.load_vocab(vocab_file)
  tokenization.check_vocab(vocab, vocab_file, tokenization.PRETRAINING_TOKENS
                           if job in PRETRAINING_DATA_JOBS else tokenization.FINE_TUNING_TOKENS)
  if "do_lower_case" in flags_obj:
    tokenization.warn_if_case_mismatch(vocab, flags_obj.do_lower_case, vocab_file)
  return vocab


def check_vocab_fits(vocab, config, flags_obj):
  if vocab is not None and config is not None and len(vocab) > config.vocab_size:
    raise errors.UserError(
        f"the vocab has {len(vocab)} entries but the model's vocab_size is {config.vocab_size}",
        errors.flag("vocab_file", flags_obj.vocab_file),
        f"use the vocab.txt that goes with {flags_obj.bert_config_file}")


def check_output_dir(flags_obj, config, job):
  """A training job's output_dir holds no other model's bert_config.json (never overwritten)."""
  output_dir = _value(flags_obj, "output_dir")
  if job not in TRAINING_JOBS or not output_dir or config is None:
    return
  from official_bert import utils  # pylint: disable=import-outside-toplevel
  utils.check_same_json(os.path.join(output_dir, "bert_config.json"), config.to_dict(),
                        "bert_config.json",
                        f"give a new --output_dir for {flags_obj.bert_config_file}, or remove "
                        "the old run")


def check_output_file(flags_obj):
  from official_bert import utils  # pylint: disable=import-outside-toplevel
  for name in ("output_file", "tflite_file"):
    value = _value(flags_obj, name)
    if value and "," not in value and _value(flags_obj, "output_shards") is None:
      utils.check_output_path(value, name)


def validate(flags_obj, job):
  """All the checks, in order of cost (numbers first, then files)."""
  check_numbers(flags_obj)
  config = load_config(flags_obj)
  check_lengths(flags_obj, config)
  vocab = check_inputs(flags_obj, job)
  check_vocab_fits(vocab, config, flags_obj)
  check_output_dir(flags_obj, config, job)
  check_output_file(flags_obj)
  logging.debug("flags checked for %s", job)
