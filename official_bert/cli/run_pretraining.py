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

import os

import tensorflow as tf
from absl import app
from absl import flags
from absl import logging


from official_bert import cli
from official_bert import configs, utils
from official_bert.training import distribute, inputs, loop, pretraining
from official_bert.cli import common_flags

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


def main(_):
  logging.set_verbosity(logging.INFO)
  if not FLAGS.do_train and not FLAGS.do_eval:
    raise ValueError("At least one of `do_train` or `do_eval` must be True.")
  for name in ("bert_config_file", "input_file", "output_dir"):
    if not FLAGS[name].value:
      raise app.UsageError(f"--{name} is required")
  # First TF work of the process: MultiWorkerMirrored must configure collectives before any op.
  strategy = common_flags.setup(FLAGS)
  bert_config = configs.BertConfig.from_json_file(FLAGS.bert_config_file)
  if FLAGS.max_seq_length > bert_config.max_position_embeddings:
    raise ValueError(
        f"--max_seq_length={FLAGS.max_seq_length} is longer than max_position_embeddings="
        f"{bert_config.max_position_embeddings} of {FLAGS.bert_config_file}")
  input_files = utils.expand_globs(FLAGS.input_file, "input_file")
  inputs.check_pretraining_files(input_files, FLAGS.max_seq_length, FLAGS.max_predictions_per_seq)
  logging.info("*** Input Files *** %d: %s%s", len(input_files), ", ".join(input_files[:5]),
               " ..." if len(input_files) > 5 else "")

  tf.io.gfile.makedirs(FLAGS.output_dir)
  if distribute.is_chief(strategy):
    bert_config.to_json_file(os.path.join(FLAGS.output_dir, "bert_config.json"))
  task = pretraining.pretraining_task(bert_config)

  def dataset_fn(is_training, global_batch):
    def fn(ctx):
      return inputs.pretraining_dataset(
          input_files, ctx.get_per_replica_batch_size(global_batch), FLAGS.max_seq_length,
          FLAGS.max_predictions_per_seq, is_training, ctx, seed=FLAGS.seed)
    return fn

  model = None
  if FLAGS.do_train:
    def init_fn(m):
      if FLAGS.init_checkpoint:
        from official_bert import checkpoints  # pylint: disable=import-outside-toplevel
        checkpoints.restore_encoder(m, FLAGS.init_checkpoint)

    model = loop.train(
        task, strategy, dataset_fn(True, FLAGS.train_batch_size),
        optimizer_fn=common_flags.optimizer_fn(FLAGS, FLAGS.num_train_steps,
                                               FLAGS.num_warmup_steps),
        settings=common_flags.run_settings(FLAGS, FLAGS.num_train_steps), init_fn=init_fn)

  if FLAGS.do_eval:
    with strategy.scope():
      if model is None:
        model = task.build_model()
        if not loop.restore_latest(model, FLAGS.output_dir):
          if not FLAGS.init_checkpoint:
            raise ValueError(f"--do_eval: no checkpoint in {FLAGS.output_dir} and no "
                             "--init_checkpoint to evaluate")
          from official_bert import checkpoints  # pylint: disable=import-outside-toplevel
          checkpoints.restore_encoder(model, FLAGS.init_checkpoint)
    latest = tf.train.latest_checkpoint(FLAGS.output_dir)
    global_step = int(latest.rsplit("-", 1)[1]) if latest else 0
    results = loop.evaluate(task, strategy, dataset_fn(False, FLAGS.eval_batch_size), model,
                            max_steps=FLAGS.max_eval_steps)
    results["global_step"] = global_step
    if distribute.is_chief(strategy):
      path = os.path.join(FLAGS.output_dir, "eval_results.txt")
      with utils.atomic_open(path, "w") as writer:
        logging.info("***** Eval results *****")
        for key in sorted(results):
          logging.info("  %s = %s", key, results[key])
          writer.write(f"{key} = {results[key]}\n")


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
