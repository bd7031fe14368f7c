"""Prints pre-training TFRecords decoded back to tokens and validates them against GR's schema.

  bert-inspect-tfrecords --input_file=/tmp/tf_examples.tfrecord \
    --vocab_file=vocab.txt --max_seq_length=128 --max_predictions_per_seq=20 --num_examples=3

Masked positions print as [MASK]/the replacement followed by {original}. Exits non-zero, naming
the file and record, if a record does not match the schema.
"""

from absl import flags
from absl import logging

from official_bert import cli
from official_bert import tokenization
from official_bert import utils
from official_bert.data import inspect_records

flags.DEFINE_string("input_file", None, "TFRecord files: comma-separated files or globs.")
flags.DEFINE_string("vocab_file", None, "Vocab to decode ids back to tokens (optional).")
flags.DEFINE_integer("max_seq_length", 128, "Expected max_seq_length.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Expected max_predictions_per_seq.")
flags.DEFINE_integer("num_examples", 5, "Records to print per file.")
FLAGS = flags.FLAGS


def main(_):
  inv_vocab = None
  if FLAGS.vocab_file:
    inv_vocab = {i: t for t, i in tokenization.load_vocab(FLAGS.vocab_file).items()}
  for path in utils.expand_globs(FLAGS.input_file, "input_file"):
    n = inspect_records.inspect(path, FLAGS.max_seq_length, FLAGS.max_predictions_per_seq,
                                inv_vocab, FLAGS.num_examples)
    logging.info("%s: %d records, all valid", path, n)


def run():
  cli.run(main, ("input_file",))


if __name__ == "__main__":
  run()
