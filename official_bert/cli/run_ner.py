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

import json
import os

from absl import app, flags, logging
import numpy as np
import tensorflow as tf

from official_bert import cli
from official_bert import checkpoints, configs, models, tagging_metrics
from official_bert import tokenization, utils
from official_bert.data import tagging
from official_bert.training import inputs, loop
from official_bert.cli import common_flags

FLAGS = flags.FLAGS

## Data
flags.DEFINE_string("data_dir", None,
                    "Directory of CoNLL files: eng.train / eng.testa / eng.testb (CoNLL-2003) or "
                    "train.txt / dev.txt / test.txt. --train_file etc. override it.")
flags.DEFINE_string("train_file", None, "CoNLL file to train on.")
flags.DEFINE_string("eval_file", None, "CoNLL file (with gold tags) to evaluate on.")
flags.DEFINE_string("predict_file", None, "CoNLL file to tag (gold tags optional).")
flags.DEFINE_enum("label_scheme", "iob1", tagging.SCHEMES,
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


def make_features(split, label_list, tokenizer, examples=None):
  if examples is None:
    examples = tagging.read_conll(data_file(split), FLAGS.label_scheme)
  features = tagging.convert_examples_to_features(
      examples, label_list, FLAGS.max_seq_length, tokenizer, FLAGS.label_scheme,
      FLAGS.doc_stride or None, FLAGS.document_context)
  logging.info("%s: %d sentences, %d words -> %d windows of %d", data_file(split),
               len(examples), sum(len(e.words) for e in examples), len(features),
               FLAGS.max_seq_length)
  for f in features[:2]:  # GR's "*** Example ***" log: what the model sees, and where labels sit
    logging.info("*** Example %d ***\ntokens: %s\nlabels: %s", f.unique_id, " ".join(f.tokens),
                 " ".join(label_list[f.label_ids[p]] if f.label_weights[p] else "-"
                          for p in range(len(f.tokens))))
  return examples, features


def build_model(bert_config, num_labels):
  return models.BertTokenClassifier(bert_config, num_labels)


def dataset_fn(path, global_batch, is_training):
  def fn(ctx):
    return inputs.tfrecord_dataset([path], tagging.decode_record(FLAGS.max_seq_length),
                                   ctx.get_per_replica_batch_size(global_batch), is_training, ctx)
  return fn


def ner_loss(features, logits):
  # Mean cross entropy over the words labelled in the batch (first sub-tokens, max context).
  return models.masked_lm_loss(logits, features["label_ids"], features["label_weights"]), {}


def predict_outputs(features, logits):
  log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))                      # [B, S, L]
  weights = tf.cast(features["label_weights"], tf.float32)                          # [B, S]
  nll = -tf.gather(log_probs, features["label_ids"], batch_dims=2)                  # [B, S]
  return {"predicted_ids": tf.argmax(log_probs, -1, output_type=tf.int32),
          "loss_sum": tf.reduce_sum(nll * weights, -1), "num_words": tf.reduce_sum(weights, -1)}


def tag_file(split, strategy, model, label_list, tokenizer, batch_size):
  """Predicts every word of the split's file; writes predictions (and scores when gold exists)."""
  examples, features = make_features(split, label_list, tokenizer)
  features = tagging.pad_to_multiple(features, batch_size, FLAGS.max_seq_length)
  record_file = os.path.join(FLAGS.output_dir, f"{split}.tf_record")
  tagging.write_features(features, record_file)
  predicted, loss_sum, num_words = {}, 0.0, 0.0
  for batch in loop.predict(strategy, dataset_fn(record_file, batch_size, False), model,
                            predict_outputs, keep_features=("unique_id",)):
    for unique_id, ids in zip(batch["unique_id"], batch["predicted_ids"]):
      predicted[int(unique_id)] = ids
    loss_sum += float(batch["loss_sum"].sum())
    num_words += float(batch["num_words"].sum())
  tags = tagging.word_predictions(examples, features, predicted, label_list)
  tags = [tagging.from_bio(t, FLAGS.label_scheme) for t in tags]
  name = "eval" if split == "eval" else "test"
  tagging.write_conll_predictions(os.path.join(FLAGS.output_dir, f"{name}_predictions.txt"),
                                  examples, tags)
  if examples and examples[0].labels is not None:
    scores = tagging_metrics.entity_scores([e.labels for e in examples], tags)
    path = os.path.join(FLAGS.output_dir, f"{name}_results.txt")
    tagging_metrics.write_eval_results(path, scores, {"eval_loss": loss_sum / max(num_words, 1)})
    logging.info("%s: entity F1 %.2f (P %.2f R %.2f) -> %s", data_file(split),
                 100 * scores["f1"], 100 * scores["precision"], 100 * scores["recall"], path)


def main(_):
  if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict):
    raise app.UsageError("At least one of --do_train, --do_eval or --do_predict must be True.")
  for name in ("bert_config_file", "vocab_file", "output_dir"):
    if not getattr(FLAGS, name):
      raise app.UsageError(f"--{name} is required")
  strategy = common_flags.setup(FLAGS)  # before any other TF work (multi-worker needs it)
  tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case, FLAGS.init_checkpoint)
  bert_config = configs.BertConfig.from_json_file(FLAGS.bert_config_file)
  if FLAGS.max_seq_length > bert_config.max_position_embeddings:
    raise app.UsageError(f"--max_seq_length={FLAGS.max_seq_length} exceeds the model's "
                         f"max_position_embeddings={bert_config.max_position_embeddings}")
  tf.io.gfile.makedirs(FLAGS.output_dir)
  tokenizer = tokenization.FullTokenizer(FLAGS.vocab_file, FLAGS.do_lower_case)

  label_file = os.path.join(FLAGS.output_dir, "label_list.txt")
  if FLAGS.do_train:
    train_examples = tagging.read_conll(data_file("train"), FLAGS.label_scheme)
    label_list = tagging.get_labels(train_examples)
    tagging.write_label_list(label_file, label_list)
    bert_config.to_json_file(os.path.join(FLAGS.output_dir, "bert_config.json"))
    with utils.atomic_open(os.path.join(FLAGS.output_dir, "ner_config.json")) as f:
      json.dump({k: FLAGS[k].value for k in ("label_scheme", "max_seq_length", "do_lower_case",
                                               "document_context", "doc_stride")}, f, indent=2)
  elif not tf.io.gfile.exists(label_file):
    raise app.UsageError(f"{label_file} not found: eval / predict without --do_train need the "
                         "output_dir of a training run (its label_list.txt and checkpoint)")
  else:
    label_list = tagging.read_label_list(label_file)
  logging.info("Labels: %s", label_list)

  task = loop.Task(build_model=lambda: build_model(bert_config, len(label_list)),
                   loss_fn=ner_loss, name="ner")
  if FLAGS.do_train:
    _, features = make_features("train", label_list, tokenizer, train_examples)
    record_file = os.path.join(FLAGS.output_dir, "train.tf_record")
    tagging.write_features(features, record_file)
    num_train_steps = FLAGS.num_train_steps or int(
        len(features) / FLAGS.train_batch_size * FLAGS.num_train_epochs)
    num_warmup_steps = int(num_train_steps * FLAGS.warmup_proportion)
    settings = common_flags.run_settings(FLAGS, num_train_steps)
    model = loop.train(
        task, strategy, dataset_fn(record_file, FLAGS.train_batch_size, True),
        common_flags.optimizer_fn(FLAGS, num_train_steps, num_warmup_steps),
        settings,
        init_fn=(lambda m: checkpoints.restore_encoder(m, FLAGS.init_checkpoint))
        if FLAGS.init_checkpoint else None)
    logging.info("Training done: %d steps", num_train_steps)
  else:
    model = loop.restore_for_inference(task, strategy, FLAGS.output_dir, FLAGS.init_checkpoint)

  if FLAGS.do_eval:
    tag_file("eval", strategy, model, label_list, tokenizer, FLAGS.eval_batch_size)
  if FLAGS.do_predict:
    tag_file("predict", strategy, model, label_list, tokenizer, FLAGS.predict_batch_size)


def run():
  cli.run(main, ("output_dir",))


if __name__ == "__main__":
  run()
