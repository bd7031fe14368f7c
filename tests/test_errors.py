"""Errors a user can act on, and nothing lost.

Library level: file:line / file names in the errors of the input readers and pipelines, and the
atomic output helpers. (The table of CLI cases follows below.)
"""

import os
import re

import numpy as np
import pytest
import tensorflow as tf

import training_helper as th
from official_bert import errors
from official_bert import utils
from official_bert.training import inputs


@pytest.fixture(scope="module")
def records(data_dir, tmp_path_factory):
  return th.make_records(data_dir, str(tmp_path_factory.mktemp("records")))


def _first_error(files, vocab_size):
  ds = inputs.pretraining_dataset(files, 4, th.SEQ, th.PRED, False, vocab_size=vocab_size,
                                  repeat=False)
  try:
    for _ in ds:
      pass
  except tf.errors.OpError as e:
    return inputs.user_error_from(e)
  return None


def test_ids_beyond_vocab_size_name_the_file(records):
  # The data holds ids of the uncased vocab (30,522 entries); a config with a smaller vocab.
  top = max(max(tf.train.Example.FromString(r.numpy()).features.feature["input_ids"]
                .int64_list.value) for r in tf.data.TFRecordDataset(records[0]))
  assert _first_error(records, 30522) is None
  error = _first_error(records, top)
  assert isinstance(error, errors.UserError)
  assert re.match(rf"token id {top} in input_ids is >= vocab_size={top} of the bert_config.json "
                  r"\(\S*pt-[01].tfrecord\): the data was made with a larger vocab", str(error))
  with pytest.raises(errors.UserError, match=r"token id \d+ in input_ids .* >= vocab_size=100 "
                                             r"of the bert_config.json \(\S*pt-0.tfrecord\)"):
    inputs.check_pretraining_files(records, th.SEQ, th.PRED, vocab_size=100)


def test_truncated_tfrecord_names_the_file(records, tmp_path):
  with open(records[1], "rb") as f:
    data = f.read()
  cut = str(tmp_path / "cut.tfrecord")
  with open(cut, "wb") as f:
    f.write(data[:len(data) // 2])
  ds = inputs.pretraining_dataset([records[0], cut], 4, th.SEQ, th.PRED, False, repeat=False)
  with pytest.raises(tf.errors.DataLossError) as info:
    for _ in ds:
      pass
  error = inputs.user_error_from(info.value)
  assert "truncated or corrupt TFRecord file" in str(error) and "cut.tfrecord" in str(error)
  assert inputs.find_corrupt_file([records[0], cut]) == cut
  with open(cut, "wb") as f:
    f.write(data[:40])  # inside the first record
  with pytest.raises(errors.UserError, match=r"truncated or corrupt TFRecord file \(\S*cut"):
    inputs.check_pretraining_files([cut], th.SEQ, th.PRED)
