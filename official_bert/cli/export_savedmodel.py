r"""Exports a trained model as a SavedModel that takes raw strings (tokenizer in-graph).

--export_type: classifier (run_classifier's output; needs --task_name), squad (run_squad's),
ner (run_ner's; its label_list.txt sits beside the checkpoint), encoder (the `bert` encoder of
any of our checkpoints or a GR one).

Example (after run_classifier.py --task_name=MRPC --output_dir=/tmp/mrpc_output ...):
  python run_scripts/export_savedmodel.py --task_name=MRPC --vocab_file=/tmp/minilm/vocab.txt \
    --bert_config_file=/tmp/mrpc_output/bert_config.json --init_checkpoint=/tmp/mrpc_output \
    --max_seq_length=128 --export_dir=/tmp/mrpc_savedmodel

  python run_scripts/export_savedmodel.py --export_type=squad --vocab_file=$BERT_DIR/vocab.txt \
    --bert_config_file=/tmp/squad_output/bert_config.json --init_checkpoint=/tmp/squad_output \
    --max_seq_length=384 --export_dir=/tmp/squad_savedmodel

Classifier signatures (all inputs tf.string [B]):
  serving_default: the task's form: (sentence) for single-sentence tasks (CoLA, SST-2),
    (sentence, sentence2) for pair tasks; `single_sentence` and `sentence_pair` are both there too.
  Outputs: {"probabilities": [B, num_labels]} (label order of the task, as test_results.tsv), or
  {"scores": [B]} for STS-B. Tokenization matches run_classifier's for do_lower_case and
  max_seq_length, except that an empty second sentence still counts as a (empty) segment.

encoder: the same two signatures -> {"pooled_output" [B, H], "sequence_output" [B, S, H],
  "input_mask" [B, S]}.
squad: serving_default(question, context) -> {"start_logits", "end_logits" [B, S] over
  "[CLS] question [SEP] context [SEP]" (one window, longest-first truncation), "start_position",
  "end_position" [B], "answer" [B]: the best span's wordpieces joined (lower-cased for uncased
  models, "##" merged)}.
ner: serving_default(text) -> {"words" [B, W] (whitespace split), "tags" [B, W] (BIO tags of
  label_list.txt, one window; "" for padding and words beyond it)}.

--tflite_file (classifier): the model alone as TFLite (features in; see serving.TFLiteRunner).

Load in any process with tensorflow-text installed (its ops are in the graph):
  import tensorflow as tf, tensorflow_text  # the import registers the ops
  m = tf.saved_model.load(export_dir); m.signatures["serving_default"](sentence=..., sentence2=...)
"""

import os

from absl import app, flags, logging
import tensorflow as tf

from official_bert import cli
from official_bert import checkpoints, configs, encoder, models, serving, utils
from official_bert.data import classifier, tagging
from official_bert.cli import common_flags
from official_bert import progress
from official_bert.training import loop

flags.DEFINE_enum("export_type", "classifier", ["classifier", "squad", "ner", "encoder"],
                  "What was trained: run_classifier, run_squad, run_ner, or any checkpoint's "
                  "encoder alone.")
flags.DEFINE_string("task_name", None, "classifier: GR's --task_name of the fine-tuned model "
                    "(sets the number of labels and single-sentence vs pair).")
flags.DEFINE_integer("max_answer_length", 30, "squad: longest answer in wordpieces (GR's).")
flags.DEFINE_string("bert_config_file", None, "bert_config.json of the model.")
flags.DEFINE_string("vocab_file", None, "The vocabulary file the model was trained with.")
flags.DEFINE_bool("do_lower_case", True, "As in run_classifier.")
flags.DEFINE_integer("max_seq_length", 128, "As in run_classifier.")
flags.DEFINE_string("init_checkpoint", None, "run_classifier's output_dir (its newest "
                    "checkpoint) or a model.ckpt-<step> prefix.")
flags.DEFINE_string("export_dir", None, "Where to write the SavedModel.")
flags.DEFINE_enum("classifier_pooling", None, models.BertClassifier.POOLINGS,
                  "As in run_classifier; by default the value run_classifier recorded beside "
                  "the checkpoint (else cls).")
flags.DEFINE_bool("jit_compile", False, "classifier: run the model under XLA in the export "
                  "(one compile per batch size and length bucket at its first request; lower "
                  "latency and higher throughput on CPU after that).")
flags.DEFINE_integer("xla_bucket", 16, "With --jit_compile: each batch is cut to a multiple of "
                     "this many tokens, so XLA compiles one program per bucket.")
flags.DEFINE_string("tflite_file", None, "classifier: also write the model alone (int32 "
                    "input_ids / input_mask / segment_ids [B, S] in, probabilities out; no "
                    "tokenizer) as a TFLite flatbuffer here, builtin ops only.")
flags.DEFINE_bool("tflite_int8", False, "With --tflite_file: int8 weights (dynamic range: "
                  "the matmuls' inputs are quantized at run time), about a quarter of the size.")
common_flags.define_progress_flag()
FLAGS = flags.FLAGS


def _restore(model, path):
  # The whole model (encoder and head) must come from the checkpoint.
  loop.build_checkpoint(model).read(path).expect_partial().assert_existing_objects_matched()
  logging.info("Restored %s", path)


def main(_):
  logging.set_verbosity(logging.INFO)
  if FLAGS.export_type == "classifier" and not FLAGS.task_name:
    raise app.UsageError("--export_type=classifier needs --task_name")
  if FLAGS.tflite_file and FLAGS.export_type != "classifier":
    raise app.UsageError("--tflite_file is for --export_type=classifier only")
  if FLAGS.tflite_int8 and not FLAGS.tflite_file:
    raise app.UsageError("--tflite_int8 needs --tflite_file (where the TFLite model goes)")
  with progress.Heartbeat("export_savedmodel", FLAGS.progress_interval_secs) as beat:
    _export(beat)


def _export(beat):
  config = configs.BertConfig.from_json_file(FLAGS.bert_config_file)
  path = tf.train.latest_checkpoint(FLAGS.init_checkpoint) or FLAGS.init_checkpoint
  common = (FLAGS.vocab_file, FLAGS.do_lower_case, FLAGS.max_seq_length)
  beat.stage(f"building the {FLAGS.export_type} model")
  if FLAGS.export_type == "encoder":
    model = encoder.BertModel(config)
    model.build()
    beat.stage(f"restoring {path}")
    checkpoints.restore_encoder(model, path)
    serving.export_encoder(model, *common, FLAGS.export_dir, heartbeat=beat)
  elif FLAGS.export_type == "squad":
    model = models.BertSpanLabeler(config)
    model.build()
    beat.stage(f"restoring {path}")
    _restore(model, path)
    serving.export_span_labeler(model, *common, FLAGS.export_dir, FLAGS.max_answer_length,
                                heartbeat=beat)
  elif FLAGS.export_type == "ner":
    label_list = tagging.read_label_list(os.path.join(os.path.dirname(path), "label_list.txt"))
    model = models.BertTokenClassifier(config, len(label_list))
    model.build()
    beat.stage(f"restoring {path}")
    _restore(model, path)
    serving.export_tagger(model, *common, label_list, FLAGS.export_dir, heartbeat=beat)
  else:
    processor = classifier.get_processor(FLAGS.task_name)
    num_labels = 1 if processor.is_regression else len(processor.get_labels())
    pooling = classifier.resolve_pooling(os.path.dirname(path), FLAGS.classifier_pooling)
    model = models.BertClassifier(config, num_labels, pooling=pooling)
    model.build()
    beat.stage(f"restoring {path}")
    _restore(model, path)
    serving.export_classifier(model, *common, processor.is_regression,
                              not processor.single_sentence, FLAGS.export_dir,
                              jit_compile=FLAGS.jit_compile, xla_bucket=FLAGS.xla_bucket,
                              heartbeat=beat)
    if FLAGS.tflite_file:
      beat.stage(f"converting to TFLite {FLAGS.tflite_file}")
      flatbuffer = serving.classifier_to_tflite(model, processor.is_regression, FLAGS.tflite_int8)
      with utils.atomic_open(FLAGS.tflite_file, "wb") as f:
        f.write(flatbuffer)
      logging.info("Wrote %s (%d bytes)", FLAGS.tflite_file, len(flatbuffer))


def run():
  cli.run(main, ("bert_config_file", "vocab_file", "init_checkpoint", "export_dir"))


if __name__ == "__main__":
  run()
