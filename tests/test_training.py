"""The shared training loop on CPU: loss falls, exact resume, replicas == one device, XLA,
bfloat16, gradient accumulation; run_pretraining end to end. Multi-worker: test_multiworker.py."""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import training_helper as th
from official_bert.training import inputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "training_helper.py")


@pytest.fixture(scope="module")
def records(data_dir, tmp_path_factory):
  return th.make_records(data_dir, str(tmp_path_factory.mktemp("records")))


def _one_device():
  return tf.distribute.OneDeviceStrategy("/cpu:0")


def _assert_weights_close(a, b, atol):
  assert len(a) == len(b)
  worst = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))
  assert worst <= atol, f"max |diff| {worst} > {atol}"


def test_run_pretraining_loss_falls_and_writes_gr_eval_keys(records, tmp_path):
  config = tmp_path / "bert_config.json"
  th.tiny_config(dropout=0.1).to_json_file(str(config))
  out = tmp_path / "out"
  cmd = [sys.executable, os.path.join(ROOT, "run_scripts", "run_pretraining.py"),
         f"--bert_config_file={config}", f"--input_file={','.join(records)}",
         f"--output_dir={out}", "--do_train", "--do_eval", f"--max_seq_length={th.SEQ}",
         f"--max_predictions_per_seq={th.PRED}", "--num_train_steps=40", "--num_warmup_steps=4",
         "--learning_rate=2e-3", "--train_batch_size=16", "--steps_per_loop=10",
         "--save_checkpoints_steps=20", "--max_eval_steps=4", "--eval_batch_size=8"]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  losses = [float(x) for x in re.findall(r"step \d+/40 loss=([\d.]+)", proc.stderr)]
  assert len(losses) == 4, proc.stderr[-3000:]
  assert losses[-1] < 0.7 * losses[0], losses  # ~10.4 (ln 30522) -> ~5 on real text
  assert re.search(r"masked_lm_accuracy=[\d.]+ .*examples/s=[\d.]+", proc.stderr)
  results = dict(line.split(" = ") for line in (out / "eval_results.txt").read_text().splitlines())
  assert set(results) == {"masked_lm_accuracy", "masked_lm_loss", "next_sentence_accuracy",
                          "next_sentence_loss", "global_step", "loss"}
  assert int(results["global_step"]) == 40
  assert float(results["masked_lm_loss"]) < 8.0
  assert sorted(p.name for p in out.glob("model.ckpt-*.index")) == [
      "model.ckpt-20.index", "model.ckpt-40.index"]
  assert list((out / "train").glob("events.out.tfevents.*"))


def test_resume_after_interruption_is_exact(records, tmp_path):
  # Dropout on: its RNG state must be restored as well as weights, Adam slots, step, lr, input.
  _, straight = th.run(_one_device(), records, str(tmp_path / "a"), 6, dropout=0.1)
  # The "killed" run: same schedule (6 total steps) but stopped after its step-3 checkpoint.
  _, halfway = th.run(_one_device(), records, str(tmp_path / "b"), 3, total_steps=6, dropout=0.1,
                      steps_per_loop=2, save_every=2)
  assert tf.train.latest_checkpoint(str(tmp_path / "b")).endswith("model.ckpt-3")
  _, resumed = th.run(_one_device(), records, str(tmp_path / "b"), 6, dropout=0.1)
  _assert_weights_close(straight, resumed, 1e-6)
  # Guard: the test can fail (the last 3 steps moved the weights far more than the tolerance).
  assert max(float(np.max(np.abs(x - y))) for x, y in zip(straight, halfway)) > 1e-4


def test_gradient_accumulation_equals_big_batch(records, tmp_path):
  _, big = th.run(_one_device(), records, str(tmp_path / "a"), 3, batch=8)
  _, acc = th.run(_one_device(), records, str(tmp_path / "b"), 3, batch=8, accumulation=4)
  _assert_weights_close(big, acc, 1e-5)


def test_jit_compile_and_lamb(records, tmp_path):
  _, plain = th.run(_one_device(), records, str(tmp_path / "a"), 2, optimizer="lamb")
  _, jit = th.run(_one_device(), records, str(tmp_path / "b"), 2, jit=True, optimizer="lamb")
  _assert_weights_close(plain, jit, 1e-4)


def test_bfloat16_mixed_precision_runs(records, tmp_path):
  keras.config.set_dtype_policy("mixed_bfloat16")
  try:
    model, weights = th.run(_one_device(), records, str(tmp_path / "a"), 2)
  finally:
    keras.config.set_dtype_policy("float32")
  assert all(w.dtype == np.float32 for w in weights)  # variables stay float32
  assert all(np.all(np.isfinite(w)) for w in weights)
  assert model.dtype_policy.compute_dtype == "bfloat16"


def test_input_length_mismatch_is_a_clear_error(records):
  with pytest.raises(ValueError, match=r"max_seq_length=128.*pass --max_seq_length=32"):
    inputs.check_pretraining_files(records, 128, th.PRED)
  with pytest.raises(ValueError, match=r"max_predictions_per_seq=20"):
    inputs.check_pretraining_files(records, th.SEQ, 20)


def _env():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_CONFIG", None)
  return env


def test_mirrored_two_cpus_matches_one_device(records, tmp_path):
  pattern = os.path.join(os.path.dirname(records[0]), "pt-*.tfrecord")
  proc = subprocess.run([sys.executable, HELPER, "mirrored", pattern, str(tmp_path)],
                        capture_output=True, text=True, timeout=600, env=_env(), check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  one = np.load(tmp_path / "one.npz")
  two = np.load(tmp_path / "mirrored.npz")
  _assert_weights_close([one[k] for k in one.files], [two[k] for k in one.files], 1e-5)


def test_micro_batches_split_static_and_dynamic_lengths():
  # A --dynamic_padding batch has an unknown length; accumulation must still split it.
  from official_bert.training import loop  # pylint: disable=import-outside-toplevel
  x = np.arange(24, dtype=np.int32).reshape(4, 6)

  @tf.function(input_signature=[tf.TensorSpec([4, None], tf.int32)])
  def dynamic(t):
    return [m["input_ids"] for m in loop._micro_batches({"input_ids": t}, 2)]  # pylint: disable=protected-access

  for i, part in enumerate(dynamic(tf.constant(x))):
    np.testing.assert_array_equal(part, x[2 * i:2 * i + 2])
  static = loop._micro_batches({"input_ids": tf.constant(x)}, 2)  # pylint: disable=protected-access
  assert [m["input_ids"].shape.as_list() for m in static] == [[2, 6], [2, 6]]
  np.testing.assert_array_equal(static[1]["input_ids"], x[2:])
