"""Runs masked LM / next sentence pre-training (GR's run_pretraining.py on tf.distribute).

  python run_scripts/run_pretraining.py \
    --input_file=gs://bucket/data/tf_examples-*.tfrecord \
    --output_dir=gs://bucket/pretraining_output \
    --do_train=True --do_eval=True \
    --bert_config_file=$BERT_BASE_DIR/bert_config.json \
    --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt \
    --train_batch_size=32 --max_seq_length=128 --max_predictions_per_seq=20 \
    --num_train_steps=20 --num_warmup_steps=10 --learning_rate=2e-5
  # Cloud TPU VM: add --use_tpu --tpu_name=local; GPUs: --distribution_strategy=mirrored.

Restarting with the same flags resumes from the newest checkpoint in output_dir.
"""

from absl import app
from absl import flags
from absl import logging

from official_bert import cli, utils
from official_bert.cli import common_flags
from official_bert.tasks import pretraining

flags.DEFINE_string("input_file", None,
                    "Input TF example files (can be a glob or comma separated).")
flags.DEFINE_integer("max_seq_length", 128,
                     "The maximum total input sequence length after WordPiece tokenization. "
                     "Sequences longer than this will be truncated, and sequences shorter than "
                     "this will be padded. Must match data generation.")
flags.DEFINE_integer("max_predictions_per_seq", 20,
                     "Maximum number of masked LM predictions per sequence. "
                     "Must match data generation.")
flags.DEFINE_integer("num_train_steps", 100000, "Number of training steps.")
flags.DEFINE_integer("num_warmup_steps", 10000, "Number of warmup steps.")
flags.DEFINE_integer("max_eval_steps", 100, "Maximum number of eval steps.")
common_flags.define_common_flags()
common_flags.define_eval_flags()

FLAGS = flags.FLAGS


def task_config():
  return pretraining.PretrainingConfig(
      input_files=utils.expand_globs(FLAGS.input_file, "input_file"),
      output_dir=FLAGS.output_dir, max_seq_length=FLAGS.max_seq_length,
      max_predictions_per_seq=FLAGS.max_predictions_per_seq,
      max_eval_steps=FLAGS.max_eval_steps, seed=FLAGS.seed)


def main(_):
  logging.set_verbosity(logging.INFO)
  common_flags.check_modes(FLAGS, ("train", "eval"))
  for name in ("bert_config_file", "input_file", "output_dir"):
    if not FLAGS[name].value:
      raise app.UsageError(f"--{name} is required")
  bert_config = common_flags.bert_config(FLAGS)
  # First TF work of the process: MultiWorkerMirrored configures its collectives before any op
  # (the input check below reads records).
  strategy = common_flags.setup(FLAGS)
  task = pretraining.PretrainingTask(task_config(), bert_config)
  common_flags.write_bert_config(FLAGS, bert_config, strategy)
  model = common_flags.train_or_restore(FLAGS, task, strategy)
  if FLAGS.do_eval:
    task.evaluate(strategy, model, FLAGS.eval_batch_size)


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
