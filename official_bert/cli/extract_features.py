r"""Extracts fixed per-token features from BERT's encoder layers, as GR's extract_features.py.

Example:
  echo 'Who was Jim Henson ? ||| Jim Henson was a puppeteer' > /tmp/input.txt
  python run_scripts/extract_features.py --input_file=/tmp/input.txt \
    --output_file=/tmp/output.jsonl --vocab_file=$BERT_DIR/vocab.txt \
    --bert_config_file=$BERT_DIR/bert_config.json --init_checkpoint=$BERT_DIR/bert_model.ckpt \
    --layers=-1,-2,-3,-4 --max_seq_length=128 --batch_size=8
"""

import os

from absl import flags, logging
import tensorflow as tf

from official_bert import cli
from official_bert import errors
from official_bert import checkpoints, configs, encoder, tokenization
from official_bert.cli import common_flags
from official_bert.data import extract
from official_bert import progress
from official_bert.utils import atomic_open

flags.DEFINE_string("input_file", None, "Text, one example per line; 'a ||| b' for pairs.")
flags.DEFINE_string("output_file", None, "JSON lines, one per input line.")
flags.DEFINE_string("layers", "-1,-2,-3,-4", "Encoder layers to output (negative: from the top).")
flags.DEFINE_string("bert_config_file", None, "The config json file of the pre-trained model.")
flags.DEFINE_integer("max_seq_length", 128,
                     "Maximum total input length after WordPiece; longer is truncated.")
flags.DEFINE_string("init_checkpoint", None, "Weights: GR TF1 checkpoint, ours, HF or keras-hub.")
flags.DEFINE_string("vocab_file", None, "The vocabulary file the model was trained on.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case the input (True for uncased models).")
flags.DEFINE_integer("batch_size", 32, "Batch size for predictions.")
common_flags.define_progress_flag(
    "a line (current stage; then examples done/total, examples/s, ETA)")
# GR's TPU flags, accepted for compatibility; the TPU is chosen by tf.distribute elsewhere.
flags.DEFINE_bool("use_tpu", False, "Accepted for GR compatibility.")
flags.DEFINE_string("master", None, "Accepted for GR compatibility.")
flags.DEFINE_integer("num_tpu_cores", 8, "Accepted for GR compatibility.")
flags.DEFINE_bool("use_one_hot_embeddings", False, "Accepted for GR compatibility.")
FLAGS = flags.FLAGS


def main(_):
  tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case, FLAGS.init_checkpoint)
  with progress.Heartbeat("extract_features", FLAGS.progress_interval_secs) as beat:
    _extract(beat)


def _extract(beat):
  config = configs.BertConfig.from_json_file(FLAGS.bert_config_file)
  layer_indexes = [int(x) for x in FLAGS.layers.split(",")]
  beat.stage(f"tokenizing {FLAGS.input_file}")
  tokenizer = tokenization.FullTokenizer(FLAGS.vocab_file, FLAGS.do_lower_case)
  features = extract.convert_examples_to_features(
      extract.read_examples(FLAGS.input_file), FLAGS.max_seq_length, tokenizer)
  if not features:
    raise errors.UserError("no example in the input", FLAGS.input_file,
                           "give text, one example per line ('a ||| b' for pairs)")
  beat.stage(f"restoring {FLAGS.init_checkpoint}")
  model = encoder.BertModel(config)
  checkpoints.restore_encoder(model, FLAGS.init_checkpoint)

  @tf.function
  def layers_of(batch):
    all_layers = model(batch, training=False)["all_encoder_layers"]
    return [all_layers[i] for i in layer_indexes]

  arrays = extract.features_to_arrays(features)
  beat.stage("extracting features: tracing the model on the first batch")
  meter = progress.Progress("extract_features", len(features), "example",
                            interval_secs=FLAGS.progress_interval_secs)
  with atomic_open(FLAGS.output_file) as out:
    for start in range(0, len(features), FLAGS.batch_size):
      batch = {k: v[start:start + FLAGS.batch_size] for k, v in arrays.items()}
      outputs = [o.numpy() for o in layers_of(batch)]
      for j, feature in enumerate(features[start:start + FLAGS.batch_size]):
        out.write(extract.feature_json(feature, [o[j] for o in outputs], layer_indexes) + "\n")
      done = min(start + FLAGS.batch_size, len(features))
      if start == 0:  # from here on `meter` reports (examples/s, ETA)
        beat.stage("extracting features", total=len(features), beats=False)
      meter.update(done, force=done == len(features), warmup=start == 0)
  logging.info("Wrote %s", FLAGS.output_file)


def run():
  cli.run(main, ("input_file", "output_file", "vocab_file", "bert_config_file", "init_checkpoint"))


if __name__ == "__main__":
  run()
