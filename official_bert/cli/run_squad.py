r"""Fine-tunes BERT on SQuAD v1.1 / v2.0 with GR's run_squad.py flags and output files.

Example (SQuAD v1.1 from a GR checkpoint):
  python run_scripts/run_squad.py --vocab_file=$BERT_BASE_DIR/vocab.txt \
    --bert_config_file=$BERT_BASE_DIR/bert_config.json \
    --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt \
    --do_train --train_file=$SQUAD_DIR/train-v1.1.json \
    --do_predict --predict_file=$SQUAD_DIR/dev-v1.1.json \
    --train_batch_size=12 --learning_rate=3e-5 --num_train_epochs=2.0 \
    --max_seq_length=384 --doc_stride=128 --output_dir=/tmp/squad_base
  # v2.0: add --version_2_with_negative (and tune --null_score_diff_threshold).

Writes to output_dir, as GR: train.tf_record, eval.tf_record, model.ckpt-<step>,
predictions.json, nbest_predictions.json and (v2.0) null_odds.json; plus bert_config.json and,
when predict_file has answers, eval_results.json: the official evaluation (v1.1: exact_match,
f1; v2.0: exact, f1, HasAns_*, NoAns_*, best_f1 and best_f1_thresh from null_odds.json).
A killed run restarted with the same flags resumes from its checkpoint.
"""

import os
import random

from absl import app, flags, logging
import tensorflow as tf

from official_bert import cli
from official_bert import checkpoints, configs, models, squad_evaluate
from official_bert import tokenization
from official_bert.data import squad
from official_bert.training import loop
from official_bert.cli import common_flags

# ---- GR's flags (bert_config_file, output_dir, init_checkpoint, do_train, train_batch_size,
# learning_rate, save_checkpoints_steps, iterations_per_loop, use_tpu and the TPU flags,
# do_predict and predict_batch_size come from common_flags, with the distribution / precision /
# jit flags shared by every run script).
common_flags.define_common_flags()
common_flags.define_finetuning_flags(max_seq_length=384)
common_flags.define_predict_flags()
flags.DEFINE_string("train_file", None, "SQuAD json for training. E.g., train-v1.1.json")
flags.DEFINE_string("predict_file", None,
                    "SQuAD json for predictions. E.g., dev-v1.1.json or test-v1.1.json")
flags.DEFINE_integer("doc_stride", 128, "When splitting up a long document into chunks, how "
                     "much stride to take between chunks.")
flags.DEFINE_integer("max_query_length", 64, "The maximum number of tokens for the question. "
                     "Questions longer than this will be truncated to this length.")
flags.DEFINE_integer("n_best_size", 20, "The total number of n-best predictions to generate in "
                     "the nbest_predictions.json output file.")
flags.DEFINE_integer("max_answer_length", 30, "The maximum length of an answer that can be "
                     "generated. This is needed because the start and end predictions are not "
                     "conditioned on one another.")
flags.DEFINE_bool("verbose_logging", False, "If true, all of the warnings related to data "
                  "processing will be printed. A number of warnings are expected for a normal "
                  "SQuAD evaluation.")
flags.DEFINE_bool("version_2_with_negative", False,
                  "If true, the SQuAD examples contain some that do not have an answer.")
flags.DEFINE_float("null_score_diff_threshold", 0.0,
                   "If null_score - best_non_null is greater than the threshold predict null.")
# ---- Ours
flags.DEFINE_integer("shuffle_buffer_size", 100, "Training shuffle buffer, in features (GR: "
                     "100, on examples pre-shuffled with the seed).")
FLAGS = flags.FLAGS


def validate_flags_or_throw(bert_config):
  """GR's checks, with the flag names in the messages."""
  tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case, FLAGS.init_checkpoint)
  if not FLAGS.do_train and not FLAGS.do_predict:
    raise app.UsageError("At least one of --do_train or --do_predict must be True.")
  if FLAGS.do_train and not FLAGS.train_file:
    raise app.UsageError("--do_train needs --train_file")
  if FLAGS.do_predict and not FLAGS.predict_file:
    raise app.UsageError("--do_predict needs --predict_file")
  if FLAGS.max_seq_length > bert_config.max_position_embeddings:
    raise app.UsageError(
        f"--max_seq_length={FLAGS.max_seq_length} exceeds max_position_embeddings="
        f"{bert_config.max_position_embeddings} of {FLAGS.bert_config_file}")
  if FLAGS.max_seq_length <= FLAGS.max_query_length + 3:
    raise app.UsageError(f"--max_seq_length={FLAGS.max_seq_length} must be greater than "
                         f"--max_query_length={FLAGS.max_query_length} + 3")


def span_loss(features, outputs):
  """GR's loss: mean of the start and end cross entropies over the window's positions."""
  start_loss = models.classification_loss(outputs["start_logits"], features["start_positions"])
  end_loss = models.classification_loss(outputs["end_logits"], features["end_positions"])
  return (start_loss + end_loss) / 2.0, {"start_loss": start_loss, "end_loss": end_loss}


def build_model(bert_config):
  return models.BertSpanLabeler(bert_config)


def _features(examples, tokenizer, is_training, path):
  """Windows of `examples` written to `path`; returns the features (kept for prediction)."""
  features = []
  with squad.FeatureWriter(path, is_training) as writer:
    def keep(feature):
      writer.process_feature(feature)
      if not is_training:
        features.append(feature)
    squad.convert_examples_to_features(examples, tokenizer, FLAGS.max_seq_length,
                                       FLAGS.doc_stride, FLAGS.max_query_length, is_training,
                                       keep)
  return features, writer.num_features


def _dataset_fn(path, batch_size, is_training):
  def fn(ctx):
    return squad.create_dataset(path, FLAGS.max_seq_length,
                                ctx.get_per_replica_batch_size(batch_size), is_training, ctx,
                                shuffle_buffer=FLAGS.shuffle_buffer_size, seed=FLAGS.seed)
  return fn


def train(task, strategy, tokenizer):
  train_examples = squad.read_squad_examples(FLAGS.train_file, True,
                                             FLAGS.version_2_with_negative)
  num_train_steps = int(len(train_examples) / FLAGS.train_batch_size * FLAGS.num_train_epochs)
  num_warmup_steps = int(num_train_steps * FLAGS.warmup_proportion)
  # Pre-shuffle so a small shuffle buffer suffices (GR).
  random.Random(FLAGS.seed).shuffle(train_examples)
  train_file = os.path.join(FLAGS.output_dir, "train.tf_record")
  _, num_features = _features(train_examples, tokenizer, True, train_file)
  logging.info("***** Running training *****\n  Num orig examples = %d\n  Num split examples = "
               "%d\n  Batch size = %d\n  Num steps = %d", len(train_examples), num_features,
               FLAGS.train_batch_size, num_train_steps)
  if num_train_steps < 1:
    raise app.UsageError(f"{len(train_examples)} training examples x --num_train_epochs="
                         f"{FLAGS.num_train_epochs} make no step of --train_batch_size="
                         f"{FLAGS.train_batch_size}")
  return loop.train(
      task, strategy, _dataset_fn(train_file, FLAGS.train_batch_size, True),
      optimizer_fn=common_flags.optimizer_fn(FLAGS, num_train_steps, num_warmup_steps),
      settings=common_flags.run_settings(FLAGS, num_train_steps),
      init_fn=(lambda m: checkpoints.restore_encoder(m, FLAGS.init_checkpoint))
      if FLAGS.init_checkpoint else None)


def predict(model, strategy, tokenizer, eval_examples):
  eval_features, _ = _features(eval_examples, tokenizer, False,
                               os.path.join(FLAGS.output_dir, "eval.tf_record"))
  logging.info("***** Running predictions *****\n  Num orig examples = %d\n  Num split examples "
               "= %d\n  Batch size = %d", len(eval_examples), len(eval_features),
               FLAGS.predict_batch_size)
  all_results = []
  for i, batch in enumerate(loop.predict(
      strategy, _dataset_fn(os.path.join(FLAGS.output_dir, "eval.tf_record"),
                            FLAGS.predict_batch_size, False), model,
      predict_fn=lambda f, out: {k: tf.cast(out[k], tf.float32)
                                 for k in ("start_logits", "end_logits")},
      keep_features=("unique_ids",))):
    if i % 100 == 0:
      logging.info("Processing example: %d", len(all_results))
    for unique_id, start, end in zip(batch["unique_ids"], batch["start_logits"],
                                     batch["end_logits"]):
      if unique_id:  # 0: padding of the last batch
        all_results.append(squad.RawResult(int(unique_id), start, end))
  out = FLAGS.output_dir
  squad.write_predictions(
      eval_examples, eval_features, all_results, FLAGS.n_best_size, FLAGS.max_answer_length,
      FLAGS.do_lower_case, os.path.join(out, "predictions.json"),
      os.path.join(out, "nbest_predictions.json"), os.path.join(out, "null_odds.json"),
      FLAGS.version_2_with_negative, FLAGS.null_score_diff_threshold, FLAGS.verbose_logging)
  if squad_evaluate.is_labelled(FLAGS.predict_file, FLAGS.version_2_with_negative):
    metrics = squad_evaluate.evaluate_files(
        FLAGS.predict_file, os.path.join(out, "predictions.json"),
        os.path.join(out, "null_odds.json") if FLAGS.version_2_with_negative else None,
        FLAGS.version_2_with_negative, os.path.join(out, "eval_results.json"))
    logging.info("***** Eval results *****\n%s",
                 "\n".join(f"  {k} = {v}" for k, v in metrics.items()))
  else:
    logging.info("%s has unanswered questions: no evaluation", FLAGS.predict_file)


def main(_):
  logging.set_verbosity(logging.INFO)
  bert_config = configs.BertConfig.from_json_file(FLAGS.bert_config_file)
  validate_flags_or_throw(bert_config)
  strategy = common_flags.setup(FLAGS)  # before any other TF work (multi-worker needs it)
  tf.io.gfile.makedirs(FLAGS.output_dir)
  bert_config.to_json_file(os.path.join(FLAGS.output_dir, "bert_config.json"))
  tokenizer = tokenization.FullTokenizer(FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case)
  task = loop.Task(build_model=lambda: build_model(bert_config), loss_fn=span_loss,
                   name="squad")
  eval_examples = None
  if FLAGS.do_predict:  # read first: a bad predict_file fails before training
    eval_examples = squad.read_squad_examples(FLAGS.predict_file, False,
                                              FLAGS.version_2_with_negative)
  model = train(task, strategy, tokenizer) if FLAGS.do_train else None
  if FLAGS.do_predict:
    if model is None:  # predict only
      model = loop.restore_for_inference(task, strategy, FLAGS.output_dir, FLAGS.init_checkpoint)
    predict(model, strategy, tokenizer, eval_examples)


def run():
  cli.run(main, ("vocab_file", "bert_config_file", "output_dir"))


if __name__ == "__main__":
  run()
