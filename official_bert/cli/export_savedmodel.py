r"""Exports a fine-tuned classifier as a SavedModel that takes raw strings (tokenizer in-graph).

Example (after run_classifier.py --task_name=MRPC --output_dir=/tmp/mrpc_output ...):
  python run_scripts/export_savedmodel.py --task_name=MRPC --vocab_file=/tmp/minilm/vocab.txt \
    --bert_config_file=/tmp/mrpc_output/bert_config.json --init_checkpoint=/tmp/mrpc_output \
    --max_seq_length=128 --export_dir=/tmp/mrpc_savedmodel

Signatures (all inputs tf.string [B]):
  serving_default: the task's form: (sentence) for single-sentence tasks (CoLA, SST-2),
    (sentence, sentence2) for pair tasks; `single_sentence` and `sentence_pair` are both there too.
  Outputs: {"probabilities": [B, num_labels]} (label order of the task, as test_results.tsv), or
  {"scores": [B]} for STS-B. Tokenization matches run_classifier's for do_lower_case and
  max_seq_length, except that an empty second sentence still counts as a (empty) segment.

Load in any process with tensorflow-text installed (its ops are in the graph):
  import tensorflow as tf, tensorflow_text  # the import registers the ops
  m = tf.saved_model.load(export_dir); m.signatures["serving_default"](sentence=..., sentence2=...)
"""

import os

from absl import flags, logging
import tensorflow as tf

from official_bert import cli
from official_bert import configs, models, serving
from official_bert.data import classifier
from official_bert.training import loop

flags.DEFINE_string("task_name", None, "GR's --task_name of the fine-tuned model (sets the "
                    "number of labels and single-sentence vs pair).")
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
FLAGS = flags.FLAGS


def main(_):
  logging.set_verbosity(logging.INFO)
  processor = classifier.get_processor(FLAGS.task_name)
  num_labels = 1 if processor.is_regression else len(processor.get_labels())
  config = configs.BertConfig.from_json_file(FLAGS.bert_config_file)
  path = tf.train.latest_checkpoint(FLAGS.init_checkpoint) or FLAGS.init_checkpoint
  pooling = classifier.resolve_pooling(os.path.dirname(path), FLAGS.classifier_pooling)
  model = models.BertClassifier(config, num_labels, pooling=pooling)
  model.build()
  # The whole classifier (encoder and head) must come from the checkpoint.
  loop.build_checkpoint(model).read(path).expect_partial().assert_existing_objects_matched()
  logging.info("Restored %s", path)
  serving.export_classifier(model, FLAGS.vocab_file, FLAGS.do_lower_case, FLAGS.max_seq_length,
                            processor.is_regression, not processor.single_sentence,
                            FLAGS.export_dir)


def run():
  cli.run(main, ("task_name", "bert_config_file", "vocab_file", "init_checkpoint", "export_dir"))


if __name__ == "__main__":
  run()
