r"""Fine-tunes BERT for named-entity recognition on CoNLL-format data (the BERT paper's recipe).

A per-token classifier on the encoder; the first WordPiece of each word carries its label, other
pieces are masked out. Long sentences are windowed, never truncated: every word gets one tag.

Example (CoNLL-2003, MiniLM converted to a GR checkpoint in $M):
  python run_scripts/run_ner.py --data_dir=../shared/data/conll2003 --label_scheme=iob1 \
    --vocab_file=$M/vocab.txt --bert_config_file=$M/bert_config.json \
    --init_checkpoint=$M/bert_model.ckpt --do_lower_case=True --do_train --do_eval \
    --max_seq_length=128 --train_batch_size=32 --learning_rate=5e-5 --num_train_epochs=3 \
    --output_dir=/tmp/ner
Writes to output_dir: label_list.txt, bert_config.json, model.ckpt-*, eval_results.txt (entity
precision / recall / F1, overall and per type, conlleval-compatible), eval_predictions.txt and
test_predictions.txt (`word gold predicted`, readable by conlleval).
"""

import os

from absl import app, flags, logging
import tensorflow as tf

from official_bert import cli, tokenization
from official_bert.cli import common_flags
from official_bert.data import tagging as tagging_data
from official_bert.tasks import tagging

FLAGS = flags.FLAGS

## Data
flags.DEFINE_string("data_dir", None,
                    "Directory of CoNLL files: eng.train / eng.testa / eng.testb (CoNLL-2003) or "
                    "train.txt / dev.txt / test.txt. --train_file etc. override it.")
flags.DEFINE_string("train_file", None, "CoNLL file to train on.")
flags.DEFINE_string("eval_file", None, "CoNLL file (with gold tags) to evaluate on.")
flags.DEFINE_string("predict_file", None, "CoNLL file to tag (gold tags optional).")
flags.DEFINE_enum("label_scheme", "iob1", tagging_data.SCHEMES,
                  "Tag scheme of the files (CoNLL-2003 is iob1). Training uses BIO; outputs "
                  "are written in this scheme.")
flags.DEFINE_bool("document_context", False,
                  "Window whole documents (-DOCSTART- to -DOCSTART-) so each word sees its "
                  "neighbouring sentences as context, as the BERT paper did.")
flags.DEFINE_integer("doc_stride", 0,
                     "Step between overlapping windows of a long sequence, in sub-tokens; 0 = "
                     "half a window.")

## Model and run: GR's shared flags (bert_config_file, init_checkpoint, output_dir, do_train,
## train_batch_size, learning_rate, save_checkpoints_steps, TPU, distribution, precision, ...).
common_flags.define_common_flags()
common_flags.define_finetuning_flags(max_seq_length=128)
common_flags.define_eval_flags()
common_flags.define_periodic_eval_flags("eval_f1")
common_flags.define_predict_flags()
flags.DEFINE_integer("num_train_steps", 0, "If > 0, train this many steps instead of epochs.")

_DEFAULT_FILES = {"train": ("eng.train", "train.txt"), "eval": ("eng.testa", "dev.txt"),
                  "predict": ("eng.testb", "test.txt")}


def data_file(split):
  """--<split>_file, else the conventional name inside --data_dir."""
  explicit = getattr(FLAGS, f"{split}_file")
  if explicit:
    return explicit
  for name in _DEFAULT_FILES[split] if FLAGS.data_dir else ():
    path = os.path.join(FLAGS.data_dir, name)
    if tf.io.gfile.exists(path):
      return path
  raise app.UsageError(f"--do_{split} needs --{split}_file, or --data_dir holding one of "
                       f"{_DEFAULT_FILES[split]}")


def task_config():
  wanted = {"train": FLAGS.do_train, "eval": FLAGS.do_eval or FLAGS.eval_every_steps,
            "predict": FLAGS.do_predict}
  files = {split: data_file(split) if wanted[split] else None for split in wanted}
  return tagging.TaggingConfig(
      output_dir=FLAGS.output_dir, train_file=files["train"], eval_file=files["eval"],
      predict_file=files["predict"], label_scheme=FLAGS.label_scheme,
      max_seq_length=FLAGS.max_seq_length, do_lower_case=FLAGS.do_lower_case,
      document_context=FLAGS.document_context, doc_stride=FLAGS.doc_stride, seed=FLAGS.seed)


def main(_):
  logging.set_verbosity(logging.INFO)
  for name in ("bert_config_file", "vocab_file"):
    if not FLAGS[name].value:
      raise app.UsageError(f"--{name} is required")
  common_flags.check_finetuning(FLAGS)
  common_flags.check_periodic_eval(FLAGS)
  bert_config = common_flags.bert_config(FLAGS)
  config = task_config()
  label_file = os.path.join(FLAGS.output_dir, tagging.LABEL_FILE)
  if not FLAGS.do_train and not tf.io.gfile.exists(label_file):
    raise app.UsageError(f"{label_file} not found: eval / predict without --do_train need the "
                         "output_dir of a training run (its label_list.txt and checkpoint)")
  tokenizer = tokenization.FullTokenizer(FLAGS.vocab_file, FLAGS.do_lower_case)
  strategy = common_flags.setup(FLAGS)
  common_flags.write_bert_config(FLAGS, bert_config, strategy)
  task = tagging.TaggingTask(config, bert_config, tokenizer)
  model = common_flags.train_or_restore(FLAGS, task, strategy)
  if FLAGS.do_eval:
    task.tag_file("eval", strategy, model, FLAGS.eval_batch_size)
  if FLAGS.do_predict:
    task.tag_file("predict", strategy, model, FLAGS.predict_batch_size)


def run():
  cli.run(main, ("output_dir",))


if __name__ == "__main__":
  run()
