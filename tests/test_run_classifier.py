"""End to end: run_classifier.py and export_savedmodel.py on a tiny random BERT, in subprocesses.

Checks the files GR's run_classifier writes (and ours), resume after the process dies right after
a checkpoint, the eval-only path from a GR TF1 checkpoint, STS-B regression, MNLI's mismatched
splits, and that the exported SavedModel, loaded in a fresh process from raw strings, reproduces
run_classifier's test_results.tsv.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from official_bert.data import classifier
from official_bert.tasks import base

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "glue")
RUN_CLASSIFIER = os.path.join(ROOT, "run_scripts", "run_classifier.py")
EXPORT = os.path.join(ROOT, "run_scripts", "export_savedmodel.py")
TINY = {"vocab_size": 30522, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 96, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 64,
        "type_vocab_size": 2, "initializer_range": 0.02}

# Runs run_classifier as __main__ with dropout off: Keras' dropout seed state is not in the
# checkpoint, so with dropout a resumed run draws other masks than a straight one. With $DIE set,
# the process dies right after its first checkpoint is saved: DIE=1 os._exit (no cleanup at all),
# DIE=KILL / TERM the signal.
_WRAPPER = r"""
import os, runpy, signal, sys
import keras
import tensorflow as tf
keras.layers.Dropout.call = lambda self, inputs, training=False: inputs
if os.environ.get("DIE"):
  _save = tf.train.CheckpointManager.save
  def save(self, *args, **kwargs):
    path = _save(self, *args, **kwargs)
    print("SAVED", path, flush=True)
    die = os.environ["DIE"]
    if die == "1":
      os._exit(9)
    os.kill(os.getpid(), getattr(signal, "SIG" + die))
    return path
  tf.train.CheckpointManager.save = save
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _run(argv, code=None, check=True, **env_vars):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, **env_vars)
  cmd = [sys.executable] + (["-c", code] if code else []) + argv
  res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
  if check and res.returncode:
    raise AssertionError(f"{cmd[:3]} failed ({res.returncode}):\n{res.stderr[-4000:]}")
  return res


@pytest.fixture(scope="module")
def setup(tmp_path_factory, uncased_vocab):
  d = tmp_path_factory.mktemp("run_classifier")
  config = d / "bert_config.json"
  config.write_text(json.dumps(TINY))
  return d, str(config), uncased_vocab


def _flags(setup, task, data, out, *extra):
  d, config, vocab = setup
  return [RUN_CLASSIFIER, f"--task_name={task}", f"--data_dir={os.path.join(FIXTURES, data)}",
          f"--vocab_file={vocab}", f"--bert_config_file={config}",
          f"--output_dir={d / out}", "--max_seq_length=32", *extra]


_RTE_TRAIN = ["--do_train", "--do_eval", "--do_predict", "--train_batch_size=2",
              "--num_train_epochs=6", "--save_checkpoints_steps=4", "--iterations_per_loop=2",
              "--shuffle_buffer_size=4"]  # 4 examples / 2 * 6 = 12 steps


@pytest.fixture(scope="module")
def straight(setup):
  _run(_flags(setup, "RTE", "RTE", "straight", *_RTE_TRAIN), code=_WRAPPER)
  return setup[0] / "straight"


def test_train_eval_predict_files(straight):
  for name in ("train.tf_record", "eval.tf_record", "predict.tf_record", "eval_results.txt",
               "test_results.tsv", "RTE.tsv", "bert_config.json", "model.ckpt-12.index"):
    assert (straight / name).exists(), name
  results = base.read_eval_results(str(straight / "eval_results.txt"))
  assert set(results) == {"eval_accuracy", "eval_loss", "global_step"}
  assert results["global_step"] == 12
  assert results["eval_accuracy"] in (0.0, 1 / 3, 2 / 3, 1.0)  # 3 dev examples
  probs = np.loadtxt(straight / "test_results.tsv", delimiter="\t")
  assert probs.shape == (2, 2)
  np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
  lines = (straight / "RTE.tsv").read_text().splitlines()
  labels = ["entailment", "not_entailment"]
  assert lines == ["index\tprediction"] + [f"{i}\t{labels[int(np.argmax(p))]}"
                                           for i, p in enumerate(probs)]


@pytest.mark.parametrize("die,status", [("1", 9), ("KILL", -9), ("TERM", 143)],
                         ids=["exit", "sigkill", "sigterm"])
def test_resume_after_kill_matches_straight_run(setup, straight, die, status):
  """Dies after the first checkpoint (os._exit, SIGKILL: no cleanup; SIGTERM: cleanup, exit
  143, no traceback); the rerun ends as the straight run, with no partial file left."""
  from official_bert import utils  # pylint: disable=import-outside-toplevel
  name = f"resumed_{die}"
  died = _run(_flags(setup, "RTE", "RTE", name, *_RTE_TRAIN), code=_WRAPPER, check=False,
              DIE=die)
  assert died.returncode == status and "SAVED" in died.stdout, died.stderr[-2000:]
  assert "Traceback" not in died.stderr, died.stderr[-2000:]
  out = setup[0] / name
  assert (out / "model.ckpt-4.index").exists() and not (out / "eval_results.txt").exists()
  res = _run(_flags(setup, "RTE", "RTE", name, *_RTE_TRAIN), code=_WRAPPER)
  assert "Resuming at step 4" in res.stderr
  assert "Reusing" in res.stderr  # train.tf_record from the killed run is complete and reused
  want = base.read_eval_results(str(straight / "eval_results.txt"))
  got = base.read_eval_results(str(out / "eval_results.txt"))
  assert got["global_step"] == 12
  # Same weights as the uninterrupted run: model, optimizer, step and input position restored.
  assert got["eval_loss"] == pytest.approx(want["eval_loss"], abs=1e-6)
  np.testing.assert_allclose(np.loadtxt(out / "test_results.tsv"),
                             np.loadtxt(straight / "test_results.tsv"), atol=1e-6)
  assert not [p for p in os.listdir(out) if utils.is_partial(p)]


@pytest.mark.parametrize("xla", [[], ["--jit_compile", "--xla_bucket=8"]], ids=["plain", "xla"])
def test_export_round_trip_in_fresh_process(setup, straight, xla):
  """The export (also under XLA, batches cut to a multiple of 8 tokens) gives --do_predict's
  probabilities; so does --tflite_file's flatbuffer on features packed by GR's code path."""
  d, config, vocab = setup
  export_dir = d / f"savedmodel{len(xla)}"
  tflite = [] if xla else [f"--tflite_file={d / 'model.tflite'}"]
  _run([EXPORT, "--task_name=rte", f"--bert_config_file={config}", f"--vocab_file={vocab}",
        f"--init_checkpoint={straight}", "--max_seq_length=32", f"--export_dir={export_dir}",
        *xla, *tflite])
  processor = classifier.get_processor("rte")
  examples = processor.get_test_examples(os.path.join(FIXTURES, "RTE"))
  if tflite:
    from official_bert import serving, tokenization  # pylint: disable=import-outside-toplevel
    packed = classifier.convert_examples_to_features(
        examples, processor.get_labels(), 32, tokenization.FullTokenizer(vocab))
    features = {name: np.array([getattr(f, name) for f in packed], np.int32)
                for name in serving.TFLITE_INPUTS}
    runner = serving.TFLiteRunner((d / "model.tflite").read_bytes())
    np.testing.assert_allclose(runner(features), np.loadtxt(straight / "test_results.tsv"),
                               atol=1e-5)
  code = (
      "import json, sys, tensorflow as tf\n"
      "import tensorflow_text  # registers the tokenizer ops the graph uses\n"
      "m = tf.saved_model.load(sys.argv[1])\n"
      "a, b = json.loads(sys.argv[2])\n"
      "out = m.signatures['serving_default'](sentence=tf.constant(a), sentence2=tf.constant(b))\n"
      "one = m.signatures['single_sentence'](sentence=tf.constant(a))['probabilities']\n"
      "print('JSON:' + json.dumps([out['probabilities'].numpy().tolist(), one.shape.as_list()]))\n")
  texts = [[e.text_a for e in examples], [e.text_b for e in examples]]
  res = _run([str(export_dir), json.dumps(texts)], code=code)
  probs, single_shape = json.loads(res.stdout.split("JSON:")[-1])
  np.testing.assert_allclose(probs, np.loadtxt(straight / "test_results.tsv"), atol=1e-5)
  assert single_shape == [2, 2]


def test_stsb_regression_and_mnli_eval_only_from_tf1_checkpoint(setup):
  d, config, _ = setup
  res = _run(_flags(setup, "sts-b", "STS-B", "stsb", "--do_train", "--do_eval", "--do_predict",
                    "--train_batch_size=2", "--num_train_epochs=1"))
  out = d / "stsb"
  results = base.read_eval_results(str(out / "eval_results.txt"))
  assert set(results) == {"eval_pearson", "eval_spearman", "eval_loss", "global_step"}
  assert results["global_step"] == 2 and -1 <= results["eval_pearson"] <= 1
  scores = np.loadtxt(out / "test_results.tsv").reshape(-1)
  assert scores.shape == (2,)
  lines = (out / "STS-B.tsv").read_text().splitlines()
  assert lines == ["index\tprediction"] + [f"{i}\t{s:.3f}" for i, s in enumerate(scores)]

  # A GR-format TF1 checkpoint of a random encoder, as --init_checkpoint for eval/predict only.
  from official_bert import checkpoints, configs, encoder  # pylint: disable=import-outside-toplevel
  bert = encoder.BertModel(configs.BertConfig.from_json_file(config))
  bert.build()
  prefix = checkpoints.write_tf1(checkpoints.get_weights(bert), str(d / "tf1" / "bert_model.ckpt"))
  res = _run(_flags(setup, "mnli", "MNLI", "mnli", "--do_eval", "--do_predict",
                    f"--init_checkpoint={prefix}"))
  assert "(tf1)" in res.stderr  # restored through the TF1 reader
  out = d / "mnli"
  results = base.read_eval_results(str(out / "eval_results.txt"))
  assert set(results) == {"eval_accuracy", "eval_loss", "eval_mismatched_accuracy",
                          "eval_mismatched_loss", "global_step"}
  assert results["global_step"] == 0
  assert np.loadtxt(out / "test_results.tsv", ndmin=2).shape == (1, 3)
  assert np.loadtxt(out / "test_results_mismatched.tsv", ndmin=2).shape == (2, 3)
  assert (out / "MNLI-m.tsv").read_text().splitlines()[1].startswith("0\t")
  assert len((out / "MNLI-mm.tsv").read_text().splitlines()) == 3


def test_mean_pooling_is_recorded_and_a_contradicting_flag_stops(setup):
  d, config, vocab = setup
  # The initial checkpoint sits in a sentence-transformers folder whose Pooling module says mean
  # (as all-MiniLM-L6-v2's): without --classifier_pooling, training uses and records mean.
  from official_bert import checkpoints, configs, encoder  # pylint: disable=import-outside-toplevel
  bert = encoder.BertModel(configs.BertConfig.from_json_file(config))
  bert.build()
  st = d / "st_checkpoint"
  prefix = checkpoints.write_tf1(checkpoints.get_weights(bert), str(st / "bert_model.ckpt"))
  (st / "modules.json").write_text(json.dumps(
      [{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
  (st / "1_Pooling").mkdir()
  (st / "1_Pooling" / "config.json").write_text(json.dumps(
      {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}))
  res = _run(_flags(setup, "RTE", "RTE", "mean", "--do_train", "--do_predict",
                    "--train_batch_size=2", "--num_train_epochs=1", f"--init_checkpoint={prefix}"))
  assert "Classifier pooling: mean" in res.stderr
  out = d / "mean"
  assert (out / classifier.POOLING_FILE).read_text().strip() == "mean"
  assert classifier.resolve_pooling(str(out), None) == "mean"
  assert classifier.resolve_pooling(str(d), None) == "cls"  # nothing recorded: GR's default
  res = _run(_flags(setup, "RTE", "RTE", "mean", "--do_predict", "--classifier_pooling=cls"),
             check=False)
  assert res.returncode != 0 and "--classifier_pooling=mean" in res.stderr
  # Without the flag, eval-only and export read the record: the same predictions as training's.
  want = np.loadtxt(out / "test_results.tsv")
  _run(_flags(setup, "RTE", "RTE", "mean", "--do_predict"))
  np.testing.assert_allclose(np.loadtxt(out / "test_results.tsv"), want, atol=1e-6)
  _run([EXPORT, "--task_name=rte", f"--bert_config_file={config}", f"--vocab_file={vocab}",
        f"--init_checkpoint={out}", "--max_seq_length=32", f"--export_dir={d / 'mean_export'}"])
  examples = classifier.get_processor("rte").get_test_examples(os.path.join(FIXTURES, "RTE"))
  code = ("import json, sys, tensorflow as tf\nimport tensorflow_text\n"
          "m = tf.saved_model.load(sys.argv[1])\na, b = json.loads(sys.argv[2])\n"
          "out = m.signatures['serving_default'](sentence=tf.constant(a), sentence2=tf.constant(b))\n"
          "print('JSON:' + json.dumps(out['probabilities'].numpy().tolist()))\n")
  texts = [[e.text_a for e in examples], [e.text_b for e in examples]]
  res = _run([str(d / "mean_export"), json.dumps(texts)], code=code)
  np.testing.assert_allclose(json.loads(res.stdout.split("JSON:")[-1]), want, atol=1e-5)


def test_dynamic_padding_predicts_the_same_and_refuses_xla(setup, straight):
  want = np.loadtxt(straight / "test_results.tsv")
  copy = setup[0] / "dynamic"
  shutil.copytree(straight, copy)
  (copy / "test_results.tsv").unlink()
  _run(_flags(setup, "RTE", "RTE", "dynamic", "--do_predict", "--dynamic_padding"))
  np.testing.assert_allclose(np.loadtxt(copy / "test_results.tsv"), want, atol=1e-5)
  res = _run(_flags(setup, "RTE", "RTE", "dynamic", "--do_predict", "--dynamic_padding",
                    "--jit_compile"), check=False)
  assert res.returncode != 0 and "drop --dynamic_padding" in res.stderr

