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
from official_bert.tasks import pretraining as pretraining_task
from official_bert.training import inputs


@pytest.fixture(scope="module")
def records(data_dir, tmp_path_factory):
  return th.make_records(data_dir, str(tmp_path_factory.mktemp("records")))


def _first_error(files, vocab_size):
  ds = pretraining_task.pretraining_dataset(files, 4, th.SEQ, th.PRED, False, vocab_size=vocab_size,
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
    pretraining_task.check_pretraining_files(records, th.SEQ, th.PRED, vocab_size=100)


def test_truncated_tfrecord_names_the_file(records, tmp_path):
  with open(records[1], "rb") as f:
    data = f.read()
  cut = str(tmp_path / "cut.tfrecord")
  with open(cut, "wb") as f:
    f.write(data[:len(data) // 2])
  ds = pretraining_task.pretraining_dataset([records[0], cut], 4, th.SEQ, th.PRED, False, repeat=False)
  with pytest.raises(tf.errors.DataLossError) as info:
    for _ in ds:
      pass
  error = inputs.user_error_from(info.value)
  assert "truncated or corrupt TFRecord file" in str(error) and "cut.tfrecord" in str(error)
  assert inputs.find_corrupt_file([records[0], cut]) == cut
  with open(cut, "wb") as f:
    f.write(data[:40])  # inside the first record
  with pytest.raises(errors.UserError, match=r"truncated or corrupt TFRecord file \(\S*cut"):
    pretraining_task.check_pretraining_files([cut], th.SEQ, th.PRED)


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
  stale = [str(tmp_path / f".corpus.txt.partial-{dead}")]
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
  assert sum("a partial output left by an interrupted run" in r.getMessage()
             for r in caplog.records) == 2


def test_failed_block_leaves_nothing_and_folder_output_is_refused_first(tmp_path):
  out = str(tmp_path / "x.txt")
  with pytest.raises(RuntimeError):
    with utils.atomic_open(out) as f:
      f.write("half")
      raise RuntimeError("boom")
  assert os.listdir(tmp_path) == []
  ran = []
  with pytest.raises(errors.UserError, match=r"the output path is a directory"):
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
  # Ctrl-C as in a terminal, even when this test runs in a background job (SIGINT ignored).
  code = (f"import os, signal, sys, time\nfrom official_bert import utils\n"
          f"signal.signal(signal.SIGINT, signal.default_int_handler)\n"
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


# ----------------------------------------------------------------------------- the CLI table
#
# One row per case: (id, job, flags, exit status, a substring of the message, files that must
# exist, files that must not exist). Paths: {D} the case folder, {O} the case's own output
# (out/ID, a folder or a file prefix), {V} the uncased vocab, {CV} the cased one. Every row also
# checks: no "Traceback" in stderr, a failing case prints exactly one `error:` line (the
# substring is looked for in all of stderr), and no partial output (utils.is_partial) is left.
# The cases of one job run in one process (tests/cli_case_runner.py), two jobs at a time.

CPD = ["--vocab_file={V}", "--max_seq_length=32", "--max_predictions_per_seq=5",
       "--input_file={D}/corpus.txt", "--dupe_factor=1"]
PC = ["--input_format=lines"]
RP = ["--bert_config_file={D}/model/bert_config.json", "--input_file={D}/records/pt-0.tfrecord",
      "--max_seq_length=32", "--max_predictions_per_seq=5", "--do_train", "--num_train_steps=2",
      "--num_warmup_steps=1", "--train_batch_size=4"]
RC = ["--task_name=mrpc", "--vocab_file={V}", "--bert_config_file={D}/model/bert_config.json",
      "--do_train", "--max_seq_length=32", "--train_batch_size=4", "--num_train_epochs=1"]
RS = ["--vocab_file={V}", "--bert_config_file={D}/model/bert_config.json", "--do_train",
      "--max_seq_length=64", "--max_query_length=16", "--doc_stride=32", "--train_batch_size=2"]
RN = ["--vocab_file={V}", "--bert_config_file={D}/model/bert_config.json", "--do_train",
      "--max_seq_length=32", "--train_batch_size=2"]
EF = ["--vocab_file={V}", "--bert_config_file={D}/model/bert_config.json",
      "--init_checkpoint={D}/model/bert_model.ckpt", "--max_seq_length=32",
      "--input_file={D}/sentences.txt"]
CC = ["--input_format=tf1", "--output_format=hf"]
EX = ["--task_name=mrpc", "--bert_config_file={D}/model/bert_config.json", "--vocab_file={V}",
      "--init_checkpoint={D}/model/bert_model.ckpt", "--max_seq_length=32"]

CASES = [
    # create_pretraining_data, GR's mode and the scale mode
    ("cpd_ok", "create_pretraining_data", CPD + ["--output_file={D}/cpd_ok.tfrecord"], 0, None,
     ["cpd_ok.tfrecord"], []),
    ("cpd_scale_ok", "create_pretraining_data",
     CPD + ["--output_file={D}/shard", "--output_shards=2", "--num_workers=1"], 0, None,
     ["shard-00000-of-00002", "shard-00001-of-00002"], []),
    ("cpd_no_input_flag", "create_pretraining_data", CPD[:3] + ["--output_file={O}.tfrecord"],
     1, "--input_file", [], ["{O}.tfrecord"]),
    ("cpd_glob_matches_nothing", "create_pretraining_data",
     CPD + ["--input_file={D}/nothing*.txt", "--output_file={O}.tfrecord"], 1,
     "matches no file", [], ["{O}.tfrecord"]),
    ("cpd_missing_vocab", "create_pretraining_data",
     CPD + ["--vocab_file={D}/no_vocab.txt", "--output_file={O}.tfrecord"], 1,
     "vocab file not found", [], ["{O}.tfrecord"]),
    ("cpd_vocab_without_mask", "create_pretraining_data",
     CPD + ["--vocab_file={D}/vocab_no_mask.txt", "--output_file={O}.tfrecord"], 1,
     "missing required token(s) [MASK]", [], ["{O}.tfrecord"]),
    ("cpd_dupe_factor_0", "create_pretraining_data",
     CPD + ["--dupe_factor=0", "--output_file={O}.tfrecord"], 1, "(--dupe_factor=0)", [],
     ["{O}.tfrecord"]),
    ("cpd_max_seq_length_3", "create_pretraining_data",
     CPD + ["--max_seq_length=3", "--output_file={O}.tfrecord"], 1,
     "must be at least 5", [], ["{O}.tfrecord"]),
    ("cpd_masked_lm_prob", "create_pretraining_data",
     CPD + ["--masked_lm_prob=1.5", "--output_file={O}.tfrecord"], 1,
     "(--masked_lm_prob=1.5)", [], ["{O}.tfrecord"]),
    ("cpd_predictions_0", "create_pretraining_data",
     CPD + ["--max_predictions_per_seq=0", "--output_file={O}.tfrecord"], 1,
     "(--max_predictions_per_seq=0)", [], ["{O}.tfrecord"]),
    ("cpd_predictions_over_length", "create_pretraining_data",
     CPD + ["--max_predictions_per_seq=40", "--output_file={O}.tfrecord"], 1,
     "more masked positions than --max_seq_length=32", [], ["{O}.tfrecord"]),
    ("cpd_output_is_a_folder", "create_pretraining_data", CPD + ["--output_file={D}/model"], 1,
     "the output path is a directory", [], []),
    ("cpd_scale_shards_0", "create_pretraining_data",
     CPD + ["--output_file={D}/s0", "--output_shards=0"], 1, "(--output_shards=0)", [],
     ["s0-*"]),
    ("cpd_scale_workers_negative", "create_pretraining_data",
     CPD + ["--output_file={D}/s1", "--num_workers=-1"], 1, "(--num_workers=-1)", [], ["s1*"]),
    ("cpd_scale_shards_two_prefixes", "create_pretraining_data",
     CPD + ["--output_file={D}/a,{D}/b", "--output_shards=2"], 1,
     "--output_shards needs a single --output_file prefix", [], ["a-*", "b-*"]),
    ("cpd_scale_chunk_chars_0", "create_pretraining_data",
     CPD + ["--output_file={D}/s2", "--output_shards=1", "--chunk_chars=0"], 1,
     "(--chunk_chars=0)", [], ["s2*"]),
    # prepare_corpus
    ("pc_ok", "prepare_corpus", PC + ["--input_file={D}/corpus.txt", "--output_file={D}/pc.txt"],
     0, None, ["pc.txt"], []),
    ("pc_no_source", "prepare_corpus", PC + ["--output_file={O}.txt"], 1,
     "give either --input_file", [], ["{O}.txt"]),
    ("pc_two_sources", "prepare_corpus",
     PC + ["--input_file={D}/corpus.txt", "--task_name=cola", "--data_dir={D}/cola",
           "--output_file={O}.txt"], 1, "two sources of text", [], ["{O}.txt"]),
    ("pc_task_without_data_dir", "prepare_corpus",
     PC + ["--task_name=cola", "--output_file={O}.txt"], 1, "--task_name needs --data_dir", [],
     ["{O}.txt"]),
    ("pc_glob_matches_nothing", "prepare_corpus",
     PC + ["--input_file={D}/nothing*", "--output_file={O}.txt"], 1, "matches no file", [],
     ["{O}.txt"]),
    ("pc_empty_input", "prepare_corpus",
     PC + ["--input_file={D}/empty.txt", "--output_file={O}.txt"], 1, "no document in the input",
     [],
     ["{O}.txt"]),
    ("pc_output_is_a_folder", "prepare_corpus",
     PC + ["--input_file={D}/corpus.txt", "--output_file={D}/model"], 1,
     "the output path is a directory", [], []),
    ("pc_bad_format", "prepare_corpus",
     ["--input_format=html", "--input_file={D}/corpus.txt", "--output_file={O}.txt"], 1,
     "--input_format", [], ["{O}.txt"]),
    ("pc_task_extra_tab", "prepare_corpus",
     PC + ["--task_name=cola", "--data_dir={D}/cola_bad", "--output_file={O}.txt"], 1,
     "found 5 tab-separated columns, expected 4", [], ["{O}.txt"]),
    ("pc_missing_data_dir", "prepare_corpus",
     PC + ["--task_name=cola", "--data_dir={D}/no_dir", "--output_file={O}.txt"], 1,
     "folder not found (--data_dir=", [], ["{O}.txt"]),
    # run_pretraining
    ("rp_batch_0", "run_pretraining", RP + ["--train_batch_size=0", "--output_dir={O}"], 1,
     "(--train_batch_size=0)", [], ["{O}"]),
    ("rp_batch_negative", "run_pretraining",
     RP + ["--train_batch_size=-8", "--output_dir={O}"], 1, "(--train_batch_size=-8)", [],
     ["{O}"]),
    ("rp_learning_rate_negative", "run_pretraining",
     RP + ["--learning_rate=-0.01", "--output_dir={O}"], 1, "(--learning_rate=-0.01)", [],
     ["{O}"]),
    ("rp_no_mode", "run_pretraining",
     [a for a in RP if a != "--do_train"] + ["--output_dir={O}"], 1,
     "At least one of --do_train or --do_eval", [], ["{O}"]),
    ("rp_seq_over_positions", "run_pretraining",
     RP + ["--max_seq_length=128", "--output_dir={O}"], 1,
     "max_position_embeddings=64", [], ["{O}"]),
    ("rp_seq_differs_from_data", "run_pretraining",
     RP + ["--bert_config_file={D}/model_512/bert_config.json", "--max_seq_length=48",
           "--output_dir={O}"], 1, "input_ids has length 32 but --max_seq_length=48", [],
     ["{O}"]),
    ("rp_ids_over_vocab_size", "run_pretraining",
     RP + ["--bert_config_file={D}/model_v1000/bert_config.json", "--output_dir={O}"], 1,
     ">= vocab_size=1000", [], ["{O}/model.ckpt*"]),
    ("rp_truncated_first_record", "run_pretraining",
     RP + ["--input_file={D}/records/cut0.tfrecord", "--output_dir={O}"], 1,
     "truncated or corrupt TFRecord file ({D}/records/cut0.tfrecord)", [], ["{O}/model.ckpt*"]),
    ("rp_empty_tfrecord", "run_pretraining",
     RP + ["--input_file={D}/records/empty.tfrecord", "--output_dir={O}"], 1,
     "no records ({D}/records/empty.tfrecord)", [], ["{O}"]),
    ("rp_other_config_in_output_dir", "run_pretraining",
     RP + ["--output_dir={D}/old_run"], 1, "holds a run with another bert_config.json "
     "(hidden_size: 48 there, 36 now", ["old_run/bert_config.json", "old_run/model.ckpt-5.index"],
     []),
    ("rp_glob_matches_nothing", "run_pretraining",
     RP + ["--input_file={D}/nothing*", "--output_dir={O}"], 1, "matches no file", [], ["{O}"]),
    ("rp_missing_config", "run_pretraining",
     RP + ["--bert_config_file={D}/none.json", "--output_dir={O}"], 1,
     "file not found (--bert_config_file=", [], ["{O}"]),
    ("rp_config_not_json", "run_pretraining",
     RP + ["--bert_config_file={D}/corpus.txt", "--output_dir={O}"], 1, "not a BERT config",
     [], ["{O}"]),
    ("rp_accumulation_uneven", "run_pretraining",
     RP + ["--gradient_accumulation_steps=3", "--output_dir={O}"], 1,
     "does not split into 3 equal micro-batches", [], ["{O}"]),
    ("rp_warmup_negative", "run_pretraining",
     RP + ["--num_warmup_steps=-1", "--output_dir={O}"], 1, "(--num_warmup_steps=-1)", [],
     ["{O}"]),
    ("rp_missing_init_checkpoint", "run_pretraining",
     RP + ["--init_checkpoint={D}/none/bert_model.ckpt", "--output_dir={O}"], 1,
     "no such checkpoint", [], ["{O}"]),
    ("rp_bad_flag_value", "run_pretraining",
     RP + ["--train_batch_size=many", "--output_dir={O}"], 1, "--train_batch_size", [],
     ["{O}"]),
    # run_classifier
    ("rc_no_task_flag", "run_classifier", RC[1:] + ["--data_dir={D}/mrpc", "--output_dir={O}"],
     1, "--task_name", [], ["{O}"]),
    ("rc_unknown_task", "run_classifier",
     RC + ["--task_name=glue", "--data_dir={D}/mrpc", "--output_dir={O}"], 1,
     "--task_name='glue' is not a known task", [], []),
    ("rc_batch_0", "run_classifier", RC + ["--train_batch_size=0", "--data_dir={D}/mrpc",
                                           "--output_dir={O}"], 1, "(--train_batch_size=0)",
     [], ["{O}"]),
    ("rc_learning_rate_0", "run_classifier",
     RC + ["--learning_rate=0", "--data_dir={D}/mrpc", "--output_dir={O}"], 1,
     "(--learning_rate=0.0)", [], ["{O}"]),
    ("rc_seq_3", "run_classifier",
     RC + ["--max_seq_length=3", "--data_dir={D}/mrpc", "--output_dir={O}"], 1,
     "must be at least 5", [], ["{O}"]),
    ("rc_seq_over_positions", "run_classifier",
     RC + ["--max_seq_length=128", "--data_dir={D}/mrpc", "--output_dir={O}"], 1,
     "max_position_embeddings=64", [], ["{O}"]),
    ("rc_no_mode", "run_classifier",
     [a for a in RC if a != "--do_train"] + ["--data_dir={D}/mrpc", "--output_dir={O}"], 1,
     "At least one of --do_train, --do_eval or --do_predict", [], ["{O}"]),
    ("rc_extra_tab", "run_classifier", RC + ["--data_dir={D}/mrpc_tab", "--output_dir={O}"], 1,
     "found 6 tab-separated columns, expected 5 (as the header); a tab inside a sentence? "
     "({D}/mrpc_tab/train.tsv:3)", [], ["{O}/train.tf_record", "{O}/model.ckpt*"]),
    ("rc_not_utf8", "run_classifier", RC + ["--data_dir={D}/mrpc_latin1", "--output_dir={O}"],
     1, "({D}/mrpc_latin1/train.tsv:2)", [], ["{O}/train.tf_record"]),
    ("rc_oversized_field", "run_classifier",
     RC + ["--data_dir={D}/mrpc_long", "--output_dir={O}"], 1,
     "characters (the limit is 131072) ({D}/mrpc_long/train.tsv:2)", [], ["{O}/train.tf_record"]),
    ("rc_empty_train", "run_classifier",
     RC + ["--data_dir={D}/mrpc_empty", "--output_dir={O}"], 1,
     "no train examples ({D}/mrpc_empty/train.tsv)", [], ["{O}/train.tf_record"]),
    ("rc_missing_data_dir", "run_classifier",
     RC + ["--data_dir={D}/no_dir", "--output_dir={O}"], 1, "folder not found", [], ["{O}"]),
    ("rc_vocab_without_cls", "run_classifier",
     RC + ["--vocab_file={D}/vocab_no_cls.txt", "--data_dir={D}/mrpc", "--output_dir={O}"],
     1, "missing required token(s) [CLS]", [], ["{O}"]),
    ("rc_vocab_over_vocab_size", "run_classifier",
     RC + ["--bert_config_file={D}/model_v1000/bert_config.json", "--data_dir={D}/mrpc",
           "--output_dir={O}"], 1,
     "the vocab has 30522 entries but the model's vocab_size is 1000", [], ["{O}"]),
    ("rc_other_config_in_output_dir", "run_classifier",
     RC + ["--data_dir={D}/mrpc", "--output_dir={D}/old_run"], 1,
     "holds a run with another bert_config.json", ["old_run/bert_config.json"],
     ["old_run/train.tf_record"]),
    ("rc_cased_vocab_lower_case", "run_classifier",
     RC + ["--vocab_file={CV}", "--data_dir={D}/mrpc_tab", "--output_dir={O}"], 1,
     "has upper-case entries (a cased model's vocab) but --do_lower_case=True", [],
     ["{O}/train.tf_record"]),
    ("rc_accumulation_0", "run_classifier",
     RC + ["--gradient_accumulation_steps=0", "--data_dir={D}/mrpc", "--output_dir={O}"], 1,
     "(--gradient_accumulation_steps=0)", [], ["{O}"]),
    ("rc_warmup_proportion", "run_classifier",
     RC + ["--warmup_proportion=1.5", "--data_dir={D}/mrpc", "--output_dir={O}"], 1,
     "(--warmup_proportion=1.5)", [], ["{O}"]),
    ("rc_missing_init_checkpoint", "run_classifier",
     RC + ["--init_checkpoint={D}/none/bert_model.ckpt", "--data_dir={D}/mrpc",
           "--output_dir={O}"], 1, "no such checkpoint", [], ["{O}"]),
    ("rc_eval_batch_0", "run_classifier",
     RC + ["--do_eval", "--eval_batch_size=0", "--data_dir={D}/mrpc", "--output_dir={O}"], 1,
     "(--eval_batch_size=0)", [], ["{O}"]),
    ("rc_missing_vocab", "run_classifier",
     RC + ["--vocab_file={D}/no_vocab.txt", "--data_dir={D}/mrpc", "--output_dir={O}"], 1,
     "vocab file not found", [], ["{O}"]),
    # run_squad
    ("rs_train_without_file", "run_squad", RS + ["--output_dir={O}"], 1,
     "--do_train needs --train_file", [], ["{O}"]),
    ("rs_bad_json", "run_squad", RS + ["--train_file={D}/bad.json", "--output_dir={O}"], 1,
     "not valid JSON", [], ["{O}/train.tf_record"]),
    ("rs_missing_file", "run_squad", RS + ["--train_file={D}/none.json", "--output_dir={O}"],
     1, "SQuAD file not found", [], ["{O}/train.tf_record"]),
    ("rs_not_utf8", "run_squad", RS + ["--train_file={D}/latin1.json", "--output_dir={O}"], 1,
     "not UTF-8", [], ["{O}/train.tf_record"]),
    ("rs_seq_too_short_for_query", "run_squad",
     RS + ["--max_seq_length=16", "--train_file={D}/squad.json", "--output_dir={O}"], 1,
     "--max_seq_length=16", [], ["{O}/train.tf_record"]),
    ("rs_doc_stride_0", "run_squad",
     RS + ["--doc_stride=0", "--train_file={D}/squad.json", "--output_dir={O}"], 1,
     "(--doc_stride=0)", [], ["{O}"]),
    ("rs_n_best_0", "run_squad",
     RS + ["--n_best_size=0", "--train_file={D}/squad.json", "--output_dir={O}"], 1,
     "(--n_best_size=0)", [], ["{O}"]),
    ("rs_predict_batch_0", "run_squad",
     RS + ["--do_predict", "--predict_file={D}/squad.json", "--predict_batch_size=0",
           "--train_file={D}/squad.json", "--output_dir={O}"], 1,
     "(--predict_batch_size=0)", [], ["{O}"]),
    # run_ner
    ("rn_wrong_column_count", "run_ner",
     RN + ["--train_file={D}/bad_columns.conll", "--output_dir={O}"], 1,
     "bad_columns.conll:2: found 2 column(s), but line 1 has 3", [], ["{O}/model.ckpt*"]),
    ("rn_not_utf8", "run_ner", RN + ["--train_file={D}/latin1.conll", "--output_dir={O}"], 1,
     "({D}/latin1.conll:3)", [], ["{O}/model.ckpt*"]),
    ("rn_oversized_line", "run_ner", RN + ["--train_file={D}/long.conll", "--output_dir={O}"],
     1, "({D}/long.conll:2)", [], ["{O}/model.ckpt*"]),
    ("rn_empty_file", "run_ner", RN + ["--train_file={D}/empty.txt", "--output_dir={O}"], 1,
     "no sentences ({D}/empty.txt)", [], ["{O}/model.ckpt*"]),
    ("rn_bad_tag", "run_ner", RN + ["--train_file={D}/bad_tag.conll", "--output_dir={O}"], 1,
     "bad_tag.conll:3: tag 'ORG'", [], ["{O}/model.ckpt*"]),
    ("rn_batch_0", "run_ner",
     RN + ["--train_batch_size=0", "--train_file={D}/ok.conll", "--output_dir={O}"], 1,
     "(--train_batch_size=0)", [], ["{O}"]),
    ("rn_seq_3", "run_ner",
     RN + ["--max_seq_length=3", "--train_file={D}/ok.conll", "--output_dir={O}"], 1,
     "must be at least 5", [], ["{O}"]),
    ("rn_no_mode", "run_ner",
     [a for a in RN if a != "--do_train"] + ["--train_file={D}/ok.conll", "--output_dir={O}"],
     1, "At least one of --do_train, --do_eval or --do_predict", [], ["{O}"]),
    # extract_features
    ("ef_layer_outside_model", "extract_features",
     EF + ["--layers=-7", "--output_file={O}.jsonl"], 1,
     "layer -7 is outside the model's 2 layers (--layers=-7)", [], ["{O}.jsonl"]),
    ("ef_layers_not_ints", "extract_features",
     EF + ["--layers=a,b", "--output_file={O}.jsonl"], 1, "not a comma-separated list", [],
     ["{O}.jsonl"]),
    ("ef_batch_0", "extract_features", EF + ["--batch_size=0", "--output_file={O}.jsonl"], 1,
     "(--batch_size=0)", [], ["{O}.jsonl"]),
    ("ef_seq_over_positions", "extract_features",
     EF + ["--max_seq_length=128", "--output_file={O}.jsonl"], 1,
     "max_position_embeddings=64", [], ["{O}.jsonl"]),
    ("ef_default_layers_outside_model", "extract_features", EF + ["--output_file={O}.jsonl"],
     1, "layer -3 is outside the model's 2 layers (--layers=-1,-2,-3,-4)", [], ["{O}.jsonl"]),
    ("ef_output_is_a_folder", "extract_features",
     EF + ["--layers=-1", "--output_file={D}/model"], 1,
     "the output path is a directory", [], []),
    ("ef_empty_input", "extract_features",
     EF + ["--layers=-1", "--input_file={D}/empty.txt", "--output_file={O}.jsonl"], 1,
     "no example in the input ({D}/empty.txt)", [], ["{O}.jsonl"]),
    ("ef_missing_checkpoint", "extract_features",
     EF + ["--layers=-1", "--init_checkpoint={D}/none/bert_model.ckpt",
           "--output_file={O}.jsonl"], 1, "no such checkpoint", [], ["{O}.jsonl"]),
    ("ef_ok", "extract_features", EF + ["--layers=-1,-2", "--output_file={D}/ef_ok.jsonl"], 0,
     None, ["ef_ok.jsonl"], []),
    # convert_checkpoint
    ("cc_no_output_format_flag", "convert_checkpoint",
     ["--input={D}/model/bert_model.ckpt", "--output_dir={O}"], 1, "--output_format", [],
     ["{O}"]),
    ("cc_bad_format", "convert_checkpoint",
     CC + ["--output_format=onnx", "--input={D}/model/bert_model.ckpt", "--output_dir={O}"],
     1, "--output_format", [], ["{O}"]),
    ("cc_missing_config", "convert_checkpoint",
     CC + ["--input={D}/model_noconf/bert_model.ckpt", "--output_dir={O}"], 1,
     "model_noconf/bert_config.json not found", [], ["{O}"]),
    ("cc_detected_format_ok", "convert_checkpoint",
     ["--input={D}/model/bert_model.ckpt", "--output_format=keras", "--output_dir={O}"], 0,
     None, ["{O}/bert_config.json"], []),
    ("cc_missing_input", "convert_checkpoint",
     CC + ["--input={D}/none/bert_model.ckpt", "--output_dir={O}"], 1, "", [], ["{O}"]),
    ("cc_ok", "convert_checkpoint",
     CC + ["--input={D}/model/bert_model.ckpt", "--output_dir={D}/cc_ok"], 0, None,
     ["cc_ok/model.safetensors", "cc_ok/config.json"], []),
    # export_savedmodel
    ("ex_seq_over_positions", "export_savedmodel",
     EX + ["--max_seq_length=128", "--export_dir={O}"], 1,
     "(--max_seq_length=128): pass --max_seq_length=64 or less", [], ["{O}"]),
    ("ex_seq_3", "export_savedmodel", EX + ["--max_seq_length=3", "--export_dir={O}"], 1,
     "must be at least 5", [], ["{O}"]),
    ("ex_unknown_task", "export_savedmodel", EX + ["--task_name=glue", "--export_dir={O}"], 1,
     "is not a known task", [], ["{O}"]),
    ("ex_failed_reexport_keeps_old", "export_savedmodel",
     EX + ["--init_checkpoint={D}/none", "--export_dir={D}/old_export"], 1, "no such checkpoint",
     ["old_export/saved_model.pb"], []),
    ("ex_vocab_without_cls", "export_savedmodel",
     EX + ["--vocab_file={D}/vocab_no_cls.txt", "--export_dir={O}"], 1,
     "missing required token(s) [CLS]", [], ["{O}"]),
    ("ex_tflite_for_encoder", "export_savedmodel",
     EX + ["--export_type=encoder", "--tflite_file={O}.tflite", "--export_dir={O}"], 1,
     "--tflite_file is for --export_type=classifier only", [], ["{O}", "{O}.tflite"]),
    ("ex_tflite_int8_alone", "export_savedmodel", EX + ["--tflite_int8", "--export_dir={O}"], 1,
     "--tflite_int8 needs --tflite_file", [], ["{O}"]),
    ("ex_tflite_file_is_a_folder", "export_savedmodel",
     EX + ["--tflite_file={D}/model", "--export_dir={O}"], 1,
     "(--tflite_file={D}/model): give a file name", [], ["{O}"]),
]


def _build_fixtures(d, data_dir):
  """The files the cases read: a tiny model (TF1 checkpoint), data sets good and bad."""
  import json  # pylint: disable=import-outside-toplevel
  import shutil  # pylint: disable=import-outside-toplevel
  from official_bert import checkpoints, configs, encoder  # pylint: disable=import-outside-toplevel

  def write(rel, text, mode="w"):
    path = os.path.join(d, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:  # pylint: disable=unspecified-encoding
      f.write(text)
    return path

  vocab = os.path.join(data_dir, "vocab", "bert-base-uncased-vocab.txt")
  tiny = th.tiny_config()
  os.makedirs(os.path.join(d, "model"))
  tiny.to_json_file(os.path.join(d, "model", "bert_config.json"))
  model = encoder.BertModel(tiny)
  model(dict(input_ids=np.ones((1, 4), np.int32), input_mask=np.ones((1, 4), np.int32),
             segment_ids=np.zeros((1, 4), np.int32)))
  checkpoints.write_tf1(checkpoints.get_weights(model), os.path.join(d, "model", "bert_model.ckpt"))
  shutil.copytree(os.path.join(d, "model"), os.path.join(d, "model_noconf"))
  os.remove(os.path.join(d, "model_noconf", "bert_config.json"))
  for name, change in (("model_512", dict(max_position_embeddings=512)),
                       ("model_v1000", dict(vocab_size=1000))):
    os.makedirs(os.path.join(d, name))
    tiny.replace(**change).to_json_file(os.path.join(d, name, "bert_config.json"))
  os.makedirs(os.path.join(d, "old_run"))
  tiny.replace(hidden_size=48).to_json_file(os.path.join(d, "old_run", "bert_config.json"))
  write("old_run/model.ckpt-5.index", "a checkpoint of the old run")
  write("old_export/saved_model.pb", "the good export")
  with open(vocab, encoding="utf-8") as f:
    tokens = f.read().split("\n")
  write("vocab_no_mask.txt", "\n".join(t for t in tokens if t != "[MASK]"))
  write("vocab_no_cls.txt", "\n".join(t for t in tokens if t != "[CLS]"))
  shutil.copy(os.path.join(data_dir, "sample_text", "sample_text.txt"),
              os.path.join(d, "corpus.txt"))
  write("empty.txt", "")
  os.makedirs(os.path.join(d, "out"))  # outputs of case ID: out/ID (a folder) or out/ID.ext
  write("sentences.txt", "Who was Jim Henson ? ||| Jim Henson was a puppeteer\nHello world.\n")
  # Pre-training records, a truncated one and an empty one.
  os.makedirs(os.path.join(d, "records"))
  th.make_records(data_dir, os.path.join(d, "records"))
  with open(os.path.join(d, "records", "pt-0.tfrecord"), "rb") as f:
    data = f.read()
  write("records/cut0.tfrecord", data[:40], "wb")
  write("records/empty.tfrecord", b"", "wb")
  # GLUE MRPC, good and bad.
  header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
  rows = "".join(f"{i % 2}\t{i}\t{i + 100}\tThe cat sat {i}.\tA cat sat {i}.\n" for i in range(8))
  for name in ("mrpc", "mrpc_tab", "mrpc_latin1", "mrpc_long", "mrpc_empty"):
    os.makedirs(os.path.join(d, name))
  write("mrpc/train.tsv", header + rows)
  write("mrpc/dev.tsv", header + rows)
  write("mrpc_tab/train.tsv", header + rows[:rows.index("\n") + 1] +
        "1\t7\t8\tHalf of\tsentence one.\tSentence two.\n" + rows)
  write("mrpc_latin1/train.tsv", (header + "1\t1\t2\tCaf\xe9.\tCafe.\n").encode("latin-1"), "wb")
  write("mrpc_long/train.tsv", header + "1\t1\t2\t" + "x" * 140_000 + "\tB.\n")
  write("mrpc_empty/train.tsv", header)
  write("cola/train.tsv", "src\t1\t\tThe cat sat.\nsrc\t0\t*\tCat the sat.\n")
  write("cola_bad/train.tsv", "src\t1\t\tThe cat sat.\nsrc\t0\t*\tCat\tthe sat.\n")
  # SQuAD.
  context = "The cat sat on the mat in Paris."
  squad_data = {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": context, "qas": [
      {"id": "q1", "question": "Where did the cat sit?",
       "answers": [{"text": "the mat", "answer_start": 15}]},
      {"id": "q2", "question": "In which city?", "answers": [{"text": "Paris", "answer_start": 26}]}]}]}]}
  write("squad.json", json.dumps(squad_data))
  write("bad.json", '{"data": [')
  write("latin1.json", json.dumps(squad_data).replace("cat", "c\xe9t").encode("latin-1"), "wb")
  # CoNLL.
  write("ok.conll", "EU NNP I-ORG\nrejects VBZ O\n\nPeter NNP I-PER\n")
  write("bad_columns.conll", "EU NNP I-ORG\nrejects O\n")
  write("latin1.conll", "EU I-ORG\n\ncaf\xe9 O\n".encode("latin-1"), "wb")
  write("long.conll", "EU I-ORG\n" + "x" * 140_000 + " O\n")
  write("bad_tag.conll", "EU I-ORG\n\nrejects ORG\n")


def _fill(text, d, data_dir, case_id=""):
  return (text.replace("{O}", os.path.join(d, "out", case_id)).replace("{D}", d)
          .replace("{V}", os.path.join(data_dir, "vocab", "bert-base-uncased-vocab.txt"))
          .replace("{CV}", os.path.join(data_dir, "vocab", "bert-base-cased-vocab.txt")))


@pytest.fixture(scope="module")
def cli_results(data_dir, tmp_path_factory, request):
  """Runs the selected cases (grouped by job, two jobs at a time); returns (folder, {id: result})."""
  import json  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  d = str(tmp_path_factory.mktemp("cli"))
  _build_fixtures(d, data_dir)
  selected = {item.callspec.params["case"][0] for item in request.session.items
              if hasattr(item, "callspec") and "case" in item.callspec.params}
  jobs = {}
  for case in CASES:
    if case[0] in selected:
      jobs.setdefault(case[1], []).append(case)
  env = dict(os.environ, PYTHONPATH=th.ROOT, TF_CPP_MIN_LOG_LEVEL="2",
             CUDA_VISIBLE_DEVICES="-1")
  env.pop(errors.DEBUG_ENV, None)
  runner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cli_case_runner.py")
  pending, running, results = list(jobs.items()), [], {}
  while pending or running:
    while pending and len(running) < 2:
      job, cases = pending.pop(0)
      cases_file = os.path.join(d, f".cases-{job}.json")
      with open(cases_file, "w") as f:
        json.dump([[_fill(a, d, data_dir, case[0]) for a in case[2]] for case in cases], f)
      proc = subprocess.Popen([sys.executable, runner, job, cases_file, cases_file + ".out"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
      running.append((proc, job, cases, cases_file))
    proc, job, cases, cases_file = running.pop(0)
    log = proc.communicate(timeout=1800)[0].decode("utf-8", "replace")
    assert proc.returncode == 0, f"the runner of {job} failed:\n{log[-3000:]}"
    with open(cases_file + ".out") as f:
      for case, result in zip(cases, json.load(f)):
        results[case[0]] = result
  return d, results


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_cli_case(cli_results, data_dir, case):
  import glob  # pylint: disable=import-outside-toplevel
  d, results = cli_results
  name, _, _, status, message, exist, absent = case
  result = results[name]
  stderr = result["stderr"]
  assert "Traceback" not in stderr, stderr[-3000:]
  assert result["status"] == status, stderr[-3000:]
  error_lines = [l for l in stderr.splitlines() if l.startswith("error: ")]
  if status:
    assert len(error_lines) == 1, stderr[-3000:]
  if message is not None:
    assert _fill(message, d, data_dir, name) in stderr, stderr[-3000:]
  for rel in exist:
    assert glob.glob(os.path.join(d, _fill(rel, d, data_dir, name))), f"{rel} should exist"
  for rel in absent:
    assert not glob.glob(os.path.join(d, _fill(rel, d, data_dir, name))), f"{rel} should not exist"
  if any("old_run" in a for a in case[2]):  # the other run's config is never overwritten
    with open(os.path.join(d, "old_run", "bert_config.json")) as f:
      assert '"hidden_size": 48' in f.read()
  partial = [p for p in glob.glob(os.path.join(d, "**", ".*"), recursive=True) if utils.is_partial(p)]
  assert not partial, partial


def test_the_table_is_big_enough():
  assert len(CASES) >= 60
  assert {c[1] for c in CASES} == {
      "create_pretraining_data", "prepare_corpus", "run_pretraining", "run_classifier",
      "run_squad", "run_ner", "extract_features", "convert_checkpoint", "export_savedmodel"}


# ----------------------------------------------------------------------------- kill and rerun

# run_pretraining as __main__; with $DIE=KILL / TERM the process signals itself right after its
# first checkpoint is saved (the tiny config has no dropout, so a resumed run can match exactly).
_DIE_AFTER_FIRST_SAVE = r"""
import os, runpy, signal, sys
import tensorflow as tf
if os.environ.get("DIE"):
  _save = tf.train.CheckpointManager.save
  def save(self, *args, **kwargs):
    path = _save(self, *args, **kwargs)
    print("SAVED", path, flush=True)
    os.kill(os.getpid(), getattr(signal, "SIG" + os.environ["DIE"]))
    return path
  tf.train.CheckpointManager.save = save
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _run_pretraining(records, config, out, die=None):
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  argv = [os.path.join(th.ROOT, "run_scripts", "run_pretraining.py"),
          f"--bert_config_file={config}", f"--input_file={','.join(records)}",
          f"--output_dir={out}", f"--max_seq_length={th.SEQ}",
          f"--max_predictions_per_seq={th.PRED}", "--do_train", "--do_eval",
          "--num_train_steps=6", "--num_warmup_steps=2", "--train_batch_size=4",
          "--eval_batch_size=4", "--max_eval_steps=2", "--save_checkpoints_steps=2",
          "--iterations_per_loop=2", "--learning_rate=1e-3"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=th.ROOT)
  env.pop("DIE", None)
  if die:
    env["DIE"] = die
  return subprocess.run([sys.executable, "-c", _DIE_AFTER_FIRST_SAVE] + argv, env=env,
                        capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def pretraining_straight(records, tmp_path_factory):
  d = tmp_path_factory.mktemp("pretraining_kill")
  config = str(d / "bert_config.json")
  th.tiny_config().to_json_file(config)
  res = _run_pretraining(records, config, str(d / "straight"))
  assert res.returncode == 0, res.stderr[-3000:]
  return d, config


@pytest.mark.parametrize("signal_name,status", [("KILL", -9), ("TERM", 143)])
def test_run_pretraining_killed_then_rerun_matches_straight_run(records, pretraining_straight,
                                                                 signal_name, status):
  d, config = pretraining_straight
  out = str(d / signal_name)
  died = _run_pretraining(records, config, out, die=signal_name)
  assert died.returncode == status and "SAVED" in died.stdout, died.stderr[-3000:]
  assert "Traceback" not in died.stderr
  assert not os.path.exists(os.path.join(out, "eval_results.txt"))
  res = _run_pretraining(records, config, out)
  assert res.returncode == 0, res.stderr[-3000:]
  with open(os.path.join(d, "straight", "eval_results.txt")) as f:
    want = f.read()
  with open(os.path.join(out, "eval_results.txt")) as f:
    assert f.read() == want
  assert not [p for p in os.listdir(out) if utils.is_partial(p)]


def test_entry_point_convention(tmp_path, capsys, monkeypatch):
  """run_main: a user error is one line and exit 1; a bug keeps its exception; debug re-raises."""
  from official_bert.data import classifier  # pylint: disable=import-outside-toplevel
  monkeypatch.delenv(errors.DEBUG_ENV, raising=False)

  def user_error(_):
    classifier.get_processor("glue")

  with pytest.raises(SystemExit) as info:
    errors.run_main(user_error, [])
  assert info.value.code == 1
  assert capsys.readouterr().err.startswith("error: --task_name='glue' is not a known task")
  with pytest.raises(ValueError):  # --verbosity=1: the traceback
    errors.run_main(user_error, [], verbosity=1)
  monkeypatch.setenv(errors.DEBUG_ENV, "1")
  with pytest.raises(ValueError):
    errors.run_main(user_error, [])
  monkeypatch.delenv(errors.DEBUG_ENV)

  def bug(_):
    return {}["missing"]

  with pytest.raises(KeyError):
    errors.run_main(bug, [])

  def missing_file(_):
    with open(str(tmp_path / "none.txt")):
      pass

  with pytest.raises(SystemExit):
    errors.run_main(missing_file, [])
  assert "No such file or directory" in capsys.readouterr().err
  assert errors.as_user_error(ValueError("raised outside official_bert")) is None


def test_forked_children_die_by_sigterm_as_by_default():
  """A multiprocessing pool terminates its workers with SIGTERM: they must not unwind."""
  import signal  # pylint: disable=import-outside-toplevel
  import time  # pylint: disable=import-outside-toplevel
  previous = signal.getsignal(signal.SIGTERM)
  try:
    utils.cleanup_on_sigterm()
    pid = os.fork()
    if pid == 0:  # the child: would raise Terminated (and run cleanups) with the parent's rule
      try:
        time.sleep(60)
      finally:
        os._exit(3)
    time.sleep(0.5)
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
  finally:
    signal.signal(signal.SIGTERM, previous)
