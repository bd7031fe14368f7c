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
from official_bert.tasks import pretraining

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
  # One line per host loop of 10 steps (more may come in between, every 10 s of wall time).
  losses = [float(x) for x in re.findall(r"step [1-4]0/40 loss=([\d.]+)", proc.stderr)]
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
    pretraining.check_pretraining_files(records, 128, th.PRED)
  with pytest.raises(ValueError, match=r"max_predictions_per_seq=20"):
    pretraining.check_pretraining_files(records, th.SEQ, 20)


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
  # 2 replicas with dropout, stopped after 2 steps and resumed to 4 == 4 straight steps.
  assert "Resuming at step 2 of 4" in proc.stderr, proc.stderr[-3000:]
  straight, halfway, resumed = (_npz_list(tmp_path / f"{n}.npz")
                                for n in ("straight", "halfway", "resumed"))
  _assert_weights_close(straight, resumed, 1e-6)
  assert max(float(np.max(np.abs(x - y))) for x, y in zip(straight, halfway)) > 1e-4


def _npz_list(path):
  with np.load(path) as arrays:
    return [arrays[k] for k in arrays.files]


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


def _slow(secs):
  """A dataset map that sleeps `secs` per batch: steps slower than the progress interval."""
  import time  # pylint: disable=import-outside-toplevel

  def sleep(x):
    time.sleep(secs)
    return x

  def fn(ds):
    return ds.map(lambda f: dict(f, next_sentence_labels=tf.numpy_function(
        sleep, [f["next_sentence_labels"]], f["next_sentence_labels"].dtype,
        stateful=True)))
  return fn


_TRAIN_LINE = re.compile(r"train: step (\d+)/(\d+) loss=([\d.]+) .*learning_rate=\S+ "
                         r"examples/s=([\d.]+) elapsed (\S+) ETA (\S+)$")


def test_progress_lines_at_wall_time_cadence(records, tmp_path, caplog):
  # One host loop of 1000 steps (GR's iterations_per_loop) would log once; the slowed steps
  # (0.2 s each) must still give a line about every second, with rate and ETA.
  import logging  # pylint: disable=import-outside-toplevel
  caplog.set_level(logging.INFO, logger="absl")
  th.run(_one_device(), records, str(tmp_path / "a"), 24, steps_per_loop=1000, save_every=1000,
         map_dataset=_slow(0.2), progress_interval_secs=1.0)
  lines = [(r.created, _TRAIN_LINE.search(r.getMessage())) for r in caplog.records
           if "train: step" in r.getMessage()]
  assert all(m for _, m in lines), [r.getMessage() for r in caplog.records][-20:]
  steps = [int(m.group(1)) for _, m in lines]
  assert steps[-1] == 24 and all(int(m.group(2)) == 24 for _, m in lines)
  assert len(lines) >= 3 and steps == sorted(steps), steps  # ~4.8 s of steps, 1 s cadence
  gaps = [b - a for (a, _), (b, _) in zip(lines, lines[1:])]
  assert max(gaps) < 2.5, gaps  # a call lasts ~1/5 of the interval: lines stay near cadence
  # From the second interval on: the first may drain what the input pipeline prefetched while
  # the step was traced (a slow trace on a loaded machine lets it run ahead).
  rates = [float(m.group(4)) for _, m in lines[2:]]
  assert rates and all(0 < r < 8 / 0.2 * 1.5 for r in rates), rates  # 8 examples per >= 0.2 s step
  mid = lines[len(lines) // 2][1]
  assert mid.group(6) != "?" and mid.group(6).endswith("s")


def test_chunked_host_loop_equals_one_call(records, tmp_path):
  # Progress cuts a host loop into several tf.function calls: the weights must not change.
  _, one = th.run(_one_device(), records, str(tmp_path / "a"), 6, dropout=0.1,
                  steps_per_loop=6, save_every=6, progress_interval_secs=0)
  _, cut = th.run(_one_device(), records, str(tmp_path / "b"), 6, dropout=0.1,
                  steps_per_loop=6, save_every=6, progress_interval_secs=1e-6)
  _, fewer = th.run(_one_device(), records, str(tmp_path / "c"), 5, total_steps=6, dropout=0.1,
                    steps_per_loop=6, save_every=6)
  _assert_weights_close(one, cut, 0.0)
  assert max(float(np.max(np.abs(x - y))) for x, y in zip(one, fewer)) > 1e-5  # can fail


def _events(run_dir):
  """{tag: [(step, value)]} of the event files of a TensorBoard run directory."""
  out = {}
  for path in sorted(tf.io.gfile.glob(os.path.join(run_dir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        value = tf.make_ndarray(v.tensor) if v.HasField("tensor") else v.simple_value
        out.setdefault(v.tag, []).append((event.step, value))
  return out


def test_periodic_eval_summaries_and_best_checkpoint(records, tmp_path):
  # eval_fn scores steps by hand (best at step 4, a "loss" would pick step 6); it also records
  # the weights it saw, which best/ must hold.
  from official_bert.tasks import base  # pylint: disable=import-outside-toplevel
  from official_bert.training import loop, summaries  # pylint: disable=import-outside-toplevel
  scores = {2: 0.5, 4: 0.9, 6: 0.7}
  seen = {}

  def eval_fn(model, step):
    seen[step] = [w.copy() for w in model.get_weights()]
    return {"eval_accuracy": scores[step], "eval_loss": 1.0 / step}

  out = tmp_path / "run"
  model, _ = th.run(_one_device(), records, str(out), 6, steps_per_loop=3, save_every=3,
                    write_summaries=True, save_summary_steps=2, eval_every_steps=2,
                    best_metric="eval_accuracy", eval_fn=eval_fn, run_config={"task": "tiny"})
  assert sorted(seen) == [2, 4, 6]
  history = summaries.read_history(str(out))
  assert [(r["global_step"], r["eval_accuracy"]) for r in history] == [(2, .5), (4, .9), (6, .7)]
  best = out / "best"
  assert tf.train.latest_checkpoint(str(best)).endswith("model.ckpt-4")
  assert base.read_eval_results(str(best / "eval_results.txt"))["global_step"] == 4
  loop.build_checkpoint(model).read(tf.train.latest_checkpoint(str(best))).expect_partial()
  _assert_weights_close(seen[4], model.get_weights(), 0.0)
  assert max(float(np.max(np.abs(x - y))) for x, y in zip(seen[4], seen[6])) > 1e-5

  train = _events(str(out / "train"))
  for tag in ("loss", "masked_lm_loss", "next_sentence_loss", "masked_lm_accuracy",
              "global_norm", "learning_rate", "examples_per_second"):
    assert [s for s, _ in train[tag]] == [2, 4, 6], (tag, train.get(tag))
  assert all(v > 0 for _, v in train["global_norm"])
  assert "task" in train["config"][0][1].item().decode() and train["config"][0][0] == 0
  evals = _events(str(out / "eval"))
  assert {t: [s for s, _ in v] for t, v in evals.items()} == {
      "eval_accuracy": [2, 4, 6], "eval_loss": [2, 4, 6]}
  assert [round(float(v), 4) for _, v in evals["eval_accuracy"]] == [0.5, 0.9, 0.7]
