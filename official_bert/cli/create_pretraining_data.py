"""Creates masked-LM / next-sentence pre-training TFRecords, as GR's create_pretraining_data.py.

Input: one sentence per line, a blank line between documents (see bert-prepare-corpus).
Default (compat) mode writes the same records, in the same order, as GR's script for the same
inputs, vocab and seed (byte-stable: map keys are serialized sorted). Scale mode (--num_workers or
--output_shards) streams the corpus through all cores with bounded memory; it follows GR's rules
but draws random next sentences and shuffles within chunks of --chunk_chars characters.

  bert-create-pretraining-data \
    --input_file=corpus/*.txt --output_file=/tmp/tf_examples.tfrecord \
    --vocab_file=vocab.txt --do_lower_case=True --max_seq_length=128 \
    --max_predictions_per_seq=20 --masked_lm_prob=0.15 --random_seed=12345 --dupe_factor=5
  # scale mode: 64 shards, all cores
  bert-create-pretraining-data ... --output_shards=64 --num_workers=0
(`python data_prep/create_pretraining_data.py` takes the same flags.) TensorFlow is imported only
for paths with a scheme (gs://...).
"""

import os

from absl import flags
from absl import logging

from official_bert import cli
from official_bert import errors
from official_bert import utils
from official_bert.data import pretraining_pipeline

# GR's flags, with GR's defaults.
flags.DEFINE_string("input_file", None,
                    "Input raw text file (or comma-separated list of files / globs).")
flags.DEFINE_string("output_file", None,
                    "Output TF example file (or comma-separated list of files). In scale mode "
                    "with --output_shards=N, the prefix of N files NAME-0000i-of-0000N.")
flags.DEFINE_string("vocab_file", None, "The vocabulary file that the BERT model was trained on.")
flags.DEFINE_bool("do_lower_case", True,
                  "Whether to lower case the input text. Should be True for uncased models and "
                  "False for cased models.")
flags.DEFINE_bool("do_whole_word_mask", False,
                  "Whether to use whole word masking rather than per-WordPiece masking.")
flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.")
flags.DEFINE_integer("max_predictions_per_seq", 20,
                     "Maximum number of masked LM predictions per sequence.")
flags.DEFINE_integer("random_seed", 12345, "Random seed for data generation.")
flags.DEFINE_integer("dupe_factor", 10,
                     "Number of times to duplicate the input data (with different masks).")
flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.")
flags.DEFINE_float("short_seq_prob", 0.1,
                   "Probability of creating sequences which are shorter than the maximum length.")

# Scale mode (ours).
flags.DEFINE_integer("num_workers", None,
                     "Scale mode: worker processes (0 = one per core). Unset and "
                     "--output_shards unset: GR-compatible single-process mode.")
flags.DEFINE_integer("output_shards", None,
                     "Scale mode: write this many shards named OUTPUT_FILE-0000i-of-0000N.")
flags.DEFINE_integer("chunk_chars", 1 << 20,
                     "Scale mode: characters of text per chunk (the working set of one worker "
                     "task; random next sentences and the shuffle stay within a chunk).")


def main(_):
  logging.set_verbosity(logging.INFO)
  options = pretraining_pipeline.make_options(
      vocab_file=FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case,
      do_whole_word_mask=FLAGS.do_whole_word_mask, max_seq_length=FLAGS.max_seq_length,
      max_predictions_per_seq=FLAGS.max_predictions_per_seq, random_seed=FLAGS.random_seed,
      dupe_factor=FLAGS.dupe_factor, masked_lm_prob=FLAGS.masked_lm_prob,
      short_seq_prob=FLAGS.short_seq_prob)
  pretraining_pipeline.check_options(options)
  if not os.path.isfile(FLAGS.vocab_file) and "://" not in FLAGS.vocab_file:
    raise errors.UserError("vocab file not found", errors.flag("vocab_file", FLAGS.vocab_file),
                           "give the model's vocab.txt")
  input_files = utils.expand_globs(FLAGS.input_file, "input_file")
  output_files = [p.strip() for p in FLAGS.output_file.split(",") if p.strip()]
  scale = FLAGS.num_workers is not None or FLAGS.output_shards is not None
  pretraining_pipeline.check_outputs(output_files)  # a shard prefix that is a folder too
  if FLAGS.output_shards is not None:
    if FLAGS.output_shards < 1 or len(output_files) != 1:
      raise errors.UserError("--output_shards needs a single --output_file prefix and N >= 1",
                             errors.flag("output_shards", FLAGS.output_shards),
                             "give one prefix, e.g. --output_file=/data/train")
    output_files = pretraining_pipeline.shard_names(output_files[0], FLAGS.output_shards)
  pretraining_pipeline.check_outputs(output_files)
  pretraining_pipeline.sweep_leftovers(output_files)
  with pretraining_pipeline.terminate_on_signals():
    if not scale:
      pretraining_pipeline.run_compat(input_files, output_files, options)
    else:
      pretraining_pipeline.run_scale(input_files, output_files, options,
                                     num_workers=FLAGS.num_workers or None,
                                     chunk_chars=FLAGS.chunk_chars)


FLAGS = flags.FLAGS


def run():
  cli.run(main, ("input_file", "output_file", "vocab_file"))


if __name__ == "__main__":
  run()
