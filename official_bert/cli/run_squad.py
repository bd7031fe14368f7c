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

from absl import app, flags, logging

from official_bert import cli, tokenization
from official_bert.cli import common_flags
from official_bert.tasks import span_labeling

# ---- GR's flags (bert_config_file, output_dir, init_checkpoint, do_train, train_batch_size,
# learning_rate, save_checkpoints_steps, iterations_per_loop, use_tpu and the TPU flags,
# do_predict and predict_batch_size come from common_flags, with the distribution / precision /
# jit flags shared by every run script).
common_flags.define_common_flags()
common_flags.define_finetuning_flags(max_seq_length=384)
common_flags.define_predict_flags()
common_flags.define_periodic_eval_flags("f1")
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


def validate_flags_or_throw():
  """GR's checks, with the flag names in the messages."""
  common_flags.check_finetuning(FLAGS, ("train", "predict"))
  if FLAGS.do_train and not FLAGS.train_file:
    raise app.UsageError("--do_train needs --train_file")
  if FLAGS.do_predict and not FLAGS.predict_file:
    raise app.UsageError("--do_predict needs --predict_file")
  common_flags.check_periodic_eval(FLAGS)
  if FLAGS.eval_every_steps and not FLAGS.predict_file:
    raise app.UsageError("--eval_every_steps evaluates --predict_file (with answers): give it")
  if FLAGS.max_seq_length <= FLAGS.max_query_length + 3:
    raise app.UsageError(f"--max_seq_length={FLAGS.max_seq_length} must be greater than "
                         f"--max_query_length={FLAGS.max_query_length} + 3")


def task_config():
  return span_labeling.SpanLabelingConfig(
      output_dir=FLAGS.output_dir, train_file=FLAGS.train_file, predict_file=FLAGS.predict_file,
      do_lower_case=FLAGS.do_lower_case, max_seq_length=FLAGS.max_seq_length,
      doc_stride=FLAGS.doc_stride, max_query_length=FLAGS.max_query_length,
      n_best_size=FLAGS.n_best_size, max_answer_length=FLAGS.max_answer_length,
      version_2_with_negative=FLAGS.version_2_with_negative,
      null_score_diff_threshold=FLAGS.null_score_diff_threshold,
      verbose_logging=FLAGS.verbose_logging, shuffle_buffer_size=FLAGS.shuffle_buffer_size,
      seed=FLAGS.seed)


def main(_):
  logging.set_verbosity(logging.INFO)
  validate_flags_or_throw()
  bert_config = common_flags.bert_config(FLAGS)
  tokenizer = tokenization.FullTokenizer(FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case)
  strategy = common_flags.setup(FLAGS)
  common_flags.write_bert_config(FLAGS, bert_config, strategy)
  task = span_labeling.SpanLabelingTask(task_config(), bert_config, tokenizer)
  # Read first: a bad predict_file fails before training.
  predict_examples = task.read_examples(False) if FLAGS.do_predict else None
  model = common_flags.train_or_restore(FLAGS, task, strategy)
  if FLAGS.do_predict:
    task.predict(strategy, model, FLAGS.predict_batch_size, predict_examples)


def run():
  cli.run(main, ("vocab_file", "bert_config_file", "output_dir"))


if __name__ == "__main__":
  run()
