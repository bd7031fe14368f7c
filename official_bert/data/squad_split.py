"""A SQuAD file (plain .json or the official .json.zip) split by article
(`bert-split-squad`, official_bert.cli.split_squad)."""

import io
import json
import zipfile

import tensorflow as tf


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
