"""Splits a SQuAD file (plain .json or the official .json.zip) by article.

There is no SQuAD train set in the shared data, so the quality benchmark fine-tunes on the first
24 articles of dev-v1.1 and evaluates on the other 24. Example:

  python -m data_prep.split_squad \\
    --input=../shared/data/squad/dev-v1.1.json.zip --output_dir=/tmp/squad_split \\
    --split=train:1-24 --split=eval:25-48 --first_answer_only=train

writes /tmp/squad_split/train.json and eval.json (same "version" as the input). GR's run_squad.py
wants exactly one answer per training question, dev has up to 5: --first_answer_only keeps the
first one in the named splits.
"""

import io
import json
import os
import zipfile

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from official_bert import utils

FLAGS = flags.FLAGS

flags.DEFINE_string("input", None, "SQuAD .json, or a .zip holding exactly one .json.")
flags.DEFINE_string("output_dir", None, "Where to write <name>.json for each --split.")
flags.DEFINE_multi_string(
    "split", None,
    "NAME:FIRST-LAST (1-based, inclusive article numbers), repeatable, e.g. train:1-24.")
flags.DEFINE_list("first_answer_only", [],
                  "Names of splits whose questions keep only their first answer (for training).")
flags.DEFINE_integer("max_questions", 0,
                     "If > 0, keep only the first N questions of each split (for smoke tests).")


def read_squad_file(path):
  """The parsed SQuAD JSON of a .json file or of the one .json inside a .zip."""
  with tf.io.gfile.GFile(path, "rb") as f:
    raw = f.read()
  if path.endswith(".zip"):
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
      names = [n for n in z.namelist() if n.endswith(".json")]
      if len(names) != 1:
        raise ValueError(f"--input={path}: expected one .json in the zip, found {names}")
      raw = z.read(names[0])
  try:
    dataset = json.loads(raw.decode("utf-8"))
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f"--input={path}: not a valid SQuAD JSON file ({e})") from e
  if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
    raise ValueError(f"--input={path}: no \"data\" list at the top level; not SQuAD")
  return dataset


def parse_split(spec, num_articles):
  """"train:1-24" -> ("train", 0, 24) as a Python slice of the article list."""
  try:
    name, span = spec.split(":")
    first, last = (int(x) for x in span.split("-"))
  except ValueError as e:
    raise ValueError(f"--split={spec!r}: expected NAME:FIRST-LAST, e.g. train:1-24") from e
  if not 1 <= first <= last <= num_articles:
    raise ValueError(f"--split={spec!r}: articles must lie in 1-{num_articles}")
  return name, first - 1, last


def make_split(dataset, start, end, first_answer_only=False, max_questions=0):
  """Articles [start, end) of `dataset`, optionally one answer each and at most N questions."""
  articles = []
  count = 0
  for article in dataset["data"][start:end]:
    paragraphs = []
    for paragraph in article["paragraphs"]:
      qas = []
      for qa in paragraph["qas"]:
        if max_questions and count >= max_questions:
          break
        qa = dict(qa)
        if first_answer_only and qa.get("answers"):
          qa["answers"] = qa["answers"][:1]
        qas.append(qa)
        count += 1
      if qas:
        paragraphs.append(dict(paragraph, qas=qas))
    if paragraphs:
      articles.append(dict(article, paragraphs=paragraphs))
  return {"version": dataset.get("version", ""), "data": articles}, count


def main(_):
  dataset = read_squad_file(FLAGS.input)
  tf.io.gfile.makedirs(FLAGS.output_dir)
  for spec in FLAGS.split:
    name, start, end = parse_split(spec, len(dataset["data"]))
    part, count = make_split(dataset, start, end, name in FLAGS.first_answer_only,
                             FLAGS.max_questions)
    path = os.path.join(FLAGS.output_dir, f"{name}.json")
    with utils.atomic_open(path, "w") as f:
      json.dump(part, f)
    logging.info("%s: articles %d-%d, %d questions -> %s", name, start + 1, end, count, path)


if __name__ == "__main__":
  flags.mark_flags_as_required(["input", "output_dir", "split"])
  app.run(main)
