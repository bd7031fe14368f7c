"""GR's extract_features data path: "text_a ||| text_b" lines -> features -> JSONL rows."""

import collections
import dataclasses
import json
import re

import numpy as np
import tensorflow as tf

from official_bert import tokenization
from official_bert.data.classifier import truncate_seq_pair

_PAIR = re.compile(r"^(.*) \|\|\| (.*)$")


@dataclasses.dataclass
class InputExample:
  unique_id: int
  text_a: str
  text_b: str = None


@dataclasses.dataclass
class InputFeatures:
  unique_id: int
  tokens: list
  input_ids: list
  input_mask: list
  input_type_ids: list


def read_examples(input_file):
  """One example per line; "a ||| b" is a pair. Ids count lines from 0, as GR."""
  examples = []
  with tf.io.gfile.GFile(input_file, "rb") as f:
    for unique_id, raw in enumerate(f):
      line = tokenization.convert_to_unicode(raw).strip()
      m = _PAIR.match(line)
      examples.append(InputExample(unique_id, m.group(1), m.group(2)) if m
                      else InputExample(unique_id, line))
  return examples


def convert_examples_to_features(examples, seq_length, tokenizer):
  """GR's layout: [CLS] a [SEP] (b [SEP]), segment ids 0 / 1, zero padding to seq_length."""
  features = []
  for ex in examples:
    tokens_a = tokenizer.tokenize(ex.text_a)
    tokens_b = tokenizer.tokenize(ex.text_b) if ex.text_b else None
    if tokens_b:
      truncate_seq_pair(tokens_a, tokens_b, seq_length - 3)
    else:
      tokens_a = tokens_a[:seq_length - 2]
    tokens = ["[CLS]", *tokens_a, "[SEP]"]
    type_ids = [0] * len(tokens)
    if tokens_b:
      tokens += [*tokens_b, "[SEP]"]
      type_ids += [1] * (len(tokens_b) + 1)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    pad = [0] * (seq_length - len(ids))
    features.append(InputFeatures(ex.unique_id, tokens, ids + pad, [1] * len(ids) + pad,
                                  type_ids + pad))
  return features


def features_to_arrays(features):
  """-> dict of int32 [N, S] arrays named as the model's inputs."""
  return dict(input_ids=np.array([f.input_ids for f in features], np.int32),
              input_mask=np.array([f.input_mask for f in features], np.int32),
              segment_ids=np.array([f.input_type_ids for f in features], np.int32))


def feature_json(feature, layer_outputs, layer_indexes):
  """GR's JSONL row: layer_outputs[j] is [S, H] for layer_indexes[j]; values to 6 places."""
  rows = []
  for i, token in enumerate(feature.tokens):
    layers = [collections.OrderedDict(index=index,
                                      values=[round(float(x), 6) for x in layer_outputs[j][i]])
              for j, index in enumerate(layer_indexes)]
    rows.append(collections.OrderedDict(token=token, layers=layers))
  return json.dumps(collections.OrderedDict(linex_index=feature.unique_id, features=rows))
