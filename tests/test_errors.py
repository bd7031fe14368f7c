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


# ----------------------------------------------------------------------------- nothing lost


def test_partial_names_match_no_output_glob(tmp_path):
  out = str(tmp_path / "train-00003-of-00010.tfrecord")
  tmp = utils.partial_path(out)
  assert os.path.dirname(tmp) == str(tmp_path) and os.path.basename(tmp).startswith(".")
  open(tmp, "w").close()
  for pattern in ("train-*", "train-*-of-00010*", "*.tfrecord", "train*", "*-of-00010.tfrecord"):
    assert tf.io.gfile.glob(str(tmp_path / pattern)) == [], pattern
  assert utils.is_partial(tmp) and not utils.is_partial(out)


def _dead_pid():
  import subprocess  # pylint: disable=import-outside-toplevel
  proc = subprocess.Popen(["true"])
  proc.wait()
  return proc.pid


def test_sweep_removes_partials_of_dead_processes_only(tmp_path, caplog):
  out = str(tmp_path / "corpus.txt")
  dead = _dead_pid()
  stale = [str(tmp_path / f".corpus.txt.partial-{dead}"), str(tmp_path / f"corpus.txt.tmp-{dead}")]
  alive = str(tmp_path / f".corpus.txt.partial-{os.getppid()}")
  other = str(tmp_path / f".other.txt.partial-{dead}")
  for p in stale + [alive, other]:
    open(p, "w").close()
  os.makedirs(str(tmp_path / f".corpus.txt.partial-{dead}-old"))
  with caplog.at_level("WARNING"):
    with utils.atomic_open(out) as f:
      f.write("done\n")
  assert sorted(os.listdir(tmp_path)) == sorted(
      [os.path.basename(p) for p in (out, alive, other)])
  assert sum("a partial output of an interrupted run" in r.getMessage()
             for r in caplog.records) == 3


def test_failed_block_leaves_nothing_and_folder_output_is_refused_first(tmp_path):
  out = str(tmp_path / "x.txt")
  with pytest.raises(RuntimeError):
    with utils.atomic_open(out) as f:
      f.write("half")
      raise RuntimeError("boom")
  assert os.listdir(tmp_path) == []
  ran = []
  with pytest.raises(errors.UserError, match=r"the output path is an existing folder"):
    with utils.atomic_path(str(tmp_path)):
      ran.append(1)
  assert not ran
  with pytest.raises(errors.UserError, match=r"does not exist"):
    utils.check_output_path(str(tmp_path / "no" / "x.txt"), "output_file", True)


def test_atomic_dir_swaps_only_on_success(tmp_path):
  out = str(tmp_path / "export")
  with utils.atomic_dir(out) as tmp:
    os.makedirs(tmp)
    open(os.path.join(tmp, "v1"), "w").close()
  with pytest.raises(RuntimeError):
    with utils.atomic_dir(out) as tmp:
      os.makedirs(tmp)
      open(os.path.join(tmp, "v2"), "w").close()
      raise RuntimeError("export failed")
  assert os.listdir(out) == ["v1"] and os.listdir(tmp_path) == ["export"]
  with utils.atomic_dir(out) as tmp:
    os.makedirs(tmp)
    open(os.path.join(tmp, "v3"), "w").close()
  assert os.listdir(out) == ["v3"] and os.listdir(tmp_path) == ["export"]


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_signal_removes_the_partial_file(tmp_path, sig):
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  code = (f"import os, signal, sys, time\nfrom official_bert import utils\n"
          f"with utils.atomic_open({str(tmp_path / 'out.txt')!r}) as f:\n"
          f"  f.write('x'); print('WRITING', flush=True); time.sleep(60)\n")
  proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                          env=dict(os.environ, PYTHONPATH=th.ROOT))
  assert proc.stdout.readline().strip() == "WRITING"
  proc.send_signal(getattr(__import__("signal"), sig))
  proc.wait(timeout=60)
  assert proc.returncode != 0
  assert os.listdir(tmp_path) == []


def test_a_different_config_in_the_output_folder_is_refused(tmp_path):
  path = str(tmp_path / "bert_config.json")
  assert utils.check_same_json(path, {"hidden_size": 36}) is False
  with open(path, "w") as f:
    f.write('{"hidden_size": 36, "num_hidden_layers": 2}')
  assert utils.check_same_json(path, {"hidden_size": 36, "num_hidden_layers": 2}) is True
  with pytest.raises(errors.UserError,
                     match=r"another config \(hidden_size: 36 there, 48 now, vocab_size: None "
                           r"there, 99 now\) \(\S*bert_config.json\): choose a new --output_dir"):
    utils.check_same_json(path, {"hidden_size": 48, "num_hidden_layers": 2, "vocab_size": 99})
  with open(path) as f:
    assert f.read() == '{"hidden_size": 36, "num_hidden_layers": 2}'
