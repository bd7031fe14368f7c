"""Splits a SQuAD file (plain .json or the official .json.zip) by article.

There is no SQuAD train set in the shared data, so the quality benchmark fine-tunes on the first
24 articles of dev-v1.1 and evaluates on the other 24. Example:

  bert-split-squad \\
    --input=../shared/data/squad/dev-v1.1.json.zip --output_dir=/tmp/squad_split \\
    --split=train:1-24 --split=eval:25-48 --first_answer_only=train

writes /tmp/squad_split/train.json and eval.json (same "version" as the input). GR's run_squad.py
wants exactly one answer per training question, dev has up to 5: --first_answer_only keeps the
first one in the named splits.
"""

import json
import os

from absl import flags
from absl import logging
import tensorflow as tf

from official_bert import cli
from official_bert import utils
from official_bert.data import squad_split

flags.DEFINE_string("input", None, "SQuAD .json, or a .zip holding exactly one .json.")
flags.DEFINE_string("output_dir", None, "Where to write <name>.json for each --split.")
flags.DEFINE_multi_string(
    "split", None,
    "NAME:FIRST-LAST (1-based, inclusive article numbers), repeatable, e.g. train:1-24.")
flags.DEFINE_list("first_answer_only", [],
                  "Names of splits whose questions keep only their first answer (for training).")
flags.DEFINE_integer("max_questions", 0,
                     "If > 0, keep only the first N questions of each split (for smoke tests).")
FLAGS = flags.FLAGS


def main(_):
  dataset = squad_split.read_squad_file(FLAGS.input)
  tf.io.gfile.makedirs(FLAGS.output_dir)
  for spec in FLAGS.split:
    name, start, end = squad_split.parse_split(spec, len(dataset["data"]))
    part, count = squad_split.make_split(dataset, start, end,
                                         name in FLAGS.first_answer_only, FLAGS.max_questions)
    path = os.path.join(FLAGS.output_dir, f"{name}.json")
    with utils.atomic_open(path, "w") as f:
      json.dump(part, f)
    logging.info("%s: articles %d-%d, %d questions -> %s", name, start + 1, end, count, path)


def run():
  cli.run(main, ("input", "output_dir", "split"))


if __name__ == "__main__":
  run()
