"""Progress lines: wall-time cadence, rate and ETA (a fake clock, so nothing is timed); the
heartbeat of stage-based jobs (real sleeps; only lower bounds on gaps, never on speed)."""

import re
import threading
import time

import pytest

from official_bert import progress


class _Clock:
  def __init__(self):
    self.t = 100.0

  def __call__(self):
    return self.t


def test_lines_come_at_the_interval_with_rate_and_eta():
  clock, lines = _Clock(), []
  meter = progress.Progress("train", 100, "step", examples_per_unit=32, interval_secs=10,
                            log_fn=lambda fmt, msg: lines.append(msg), clock=clock)
  clock.t += 7.0  # the first call: tracing, 7 s for one step
  assert not meter.update(1, warmup=True)
  for step in range(2, 101):  # then 2 s per step
    clock.t += 2.0
    meter.update(step, loss=0.5)
  # First line at 11 s (step 3), then every 10 s (5 steps): steps 3, 8, ..., 98.
  assert len(lines) == 20, lines
  # 3 x 32 examples in 11 s; ETA: 97 steps at 2 s (the warm-up step is not in the ETA's rate).
  assert lines[0] == "train: step 3/100 loss=0.5000 examples/s=8.7 elapsed 11s ETA 3m14s"
  # 32 examples / 2 s since the previous line; 2 steps left at 2 s each.
  assert lines[-1] == "train: step 98/100 loss=0.5000 examples/s=16.0 elapsed 3m21s ETA 4s"


def test_upcoming_work_brings_a_line_forward_and_force_logs():
  clock, lines = _Clock(), []
  meter = progress.Progress("eval", None, "batch", interval_secs=10,
                            log_fn=lambda fmt, msg: lines.append(msg), clock=clock)
  clock.t += 6.0
  assert not meter.update(3)
  assert meter.update(4, upcoming_secs=5.0)  # the next call would end past the interval
  assert lines == ["eval: batch 4 batches/s=0.7 elapsed 6s"]
  assert meter.update(5, force=True) and len(lines) == 2


def test_format_duration():
  assert [progress.format_duration(s) for s in (0.4, 9.6, 65, 3725, None, float("inf"))] == [
      "0s", "10s", "1m05s", "1h02m05s", "?", "?"]


def _heartbeat_threads():
  return [t for t in threading.enumerate() if t.name.endswith("-heartbeat")]


def _timed_log(lines):
  return lambda fmt, msg: lines.append((time.monotonic(), msg))


def test_heartbeat_logs_a_slow_stage_at_the_interval_and_stops_cleanly():
  lines, interval = [], 0.05
  with progress.Heartbeat("export", interval, log_fn=_timed_log(lines)) as beat:
    beat.stage("building model")
    beat.stage("writing SavedModel")
    time.sleep(0.6)  # one long call
    assert len(_heartbeat_threads()) == 1
  assert not _heartbeat_threads()
  count = len(lines)
  time.sleep(4 * interval)
  assert len(lines) == count  # nothing after the job's last line
  msgs = [m for _, m in lines]
  assert re.fullmatch(r"export: building model elapsed 0s \(stage 0s\)", msgs[0])
  assert msgs[-1].startswith("export: finished in ")
  beats = [(t, m) for t, m in lines[1:-1]]
  assert all(re.fullmatch(r"export: writing SavedModel elapsed \d+s \(stage \d+s\)", m)
             for _, m in beats), msgs
  assert len(beats) >= 4, msgs  # the stage line, then one per interval (~11 in 0.6 s)
  gaps = [b[0] - a[0] for a, b in zip(beats, beats[1:])]
  assert min(gaps) >= 0.9 * interval, gaps  # never more often than the interval


def test_heartbeat_counts_units_and_is_silent_after_an_error():
  clock, lines = _Clock(), []
  with pytest.raises(RuntimeError):
    with progress.Heartbeat("convert", 10, log_fn=lambda fmt, msg: lines.append(msg),
                            clock=clock) as beat:
      beat.stage("checking variables", total=10)
      clock.t += 4.0
      beat.update(3)  # not due yet
      clock.t += 7.0
      beat.update(5)
      raise RuntimeError("bad checkpoint")
  assert lines == ["convert: checking variables 0/10 elapsed 0s (stage 0s)",
                   "convert: checking variables 5/10 elapsed 11s (stage 11s)"]
  assert not _heartbeat_threads()


def test_heartbeat_is_quiet_in_a_stage_another_meter_reports():
  lines = []
  with progress.Heartbeat("extract", 0.05, log_fn=_timed_log(lines)) as beat:
    beat.stage("extracting", total=4, beats=False)
    time.sleep(0.3)
    beat.update(4)
  assert [m for _, m in lines][:1] == ["extract: extracting 0/4 elapsed 0s (stage 0s)"]
  assert len(lines) == 2 and lines[1][1].startswith("extract: finished in ")


def test_plot_run_draws_train_and_eval_series(tmp_path):
  import os  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  from official_bert.training import summaries  # pylint: disable=import-outside-toplevel
  run = tmp_path / "run"
  writers = summaries.Writers(str(run))
  for step in (10, 20, 30):
    writers.train_scalars(step, {"loss": 1.0 / step, "masked_lm_loss": 0.5 / step,
                                 "learning_rate": 1e-4 * step, "global_norm": 1.0})
    writers.eval_scalars(step, {"eval_accuracy": 0.5 + step / 100, "eval_loss": 0.3,
                                "global_step": step})
  writers.config_text({"task": "tiny"}, 0)
  writers.flush()
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  png = tmp_path / "run.png"
  proc = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "plot_run.py"),
                         f"--run_dir={run}", f"--output_file={png}"],
                        capture_output=True, text=True, timeout=300, check=False,
                        env=dict(os.environ, PYTHONPATH=root))
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "loss: loss, masked_lm_loss; learning_rate: learning_rate; eval: eval_accuracy" in (
      proc.stderr)
  assert plt.imread(str(png)).shape[:2] == (420, 1500)
  missing = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "plot_run.py"),
                            f"--run_dir={tmp_path / 'nope'}", f"--output_file={png}"],
                           capture_output=True, text=True, timeout=300, check=False,
                           env=dict(os.environ, PYTHONPATH=root))
  assert missing.returncode != 0 and "--run_dir" in missing.stderr
  assert "Traceback" not in missing.stderr


def test_run_classifier_periodic_eval_keeps_the_best_checkpoint(tmp_path, uncased_vocab):
  # RTE fixture (4 train, 3 dev examples), 12 steps, dev eval every 4: the kept model must be
  # the one with the lowest recorded eval_loss, and evaluating best/ again must reproduce it.
  import json  # pylint: disable=import-outside-toplevel
  import os  # pylint: disable=import-outside-toplevel
  import shutil  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from official_bert.data import classifier  # pylint: disable=import-outside-toplevel
  from official_bert.tasks import base  # pylint: disable=import-outside-toplevel
  from official_bert.training import summaries  # pylint: disable=import-outside-toplevel
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = tmp_path / "bert_config.json"
  config.write_text(json.dumps({
      "vocab_size": 30522, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
      "intermediate_size": 96, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
      "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 64,
      "type_vocab_size": 2, "initializer_range": 0.02}))
  out = tmp_path / "out"

  def run(output_dir, *extra):
    data = os.path.join(root, "tests", "fixtures", "glue", "RTE")
    cmd = [sys.executable, os.path.join(root, "run_scripts", "run_classifier.py"),
           "--task_name=RTE", f"--data_dir={data}",
           f"--vocab_file={uncased_vocab}", f"--bert_config_file={config}",
           f"--output_dir={output_dir}", "--max_seq_length=32", "--learning_rate=1e-3", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False,
                          env=dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc

  proc = run(out, "--do_train", "--do_eval", "--train_batch_size=2", "--num_train_epochs=6",
             "--save_checkpoints_steps=4", "--iterations_per_loop=4", "--eval_every_steps=4",
             "--keep_best_checkpoint", "--best_metric=eval_loss", "--save_summary_steps=2")
  assert "train: step 12/12 loss=" in proc.stderr
  history = summaries.read_history(str(out))
  assert [r["global_step"] for r in history] == [4, 8, 12]
  best = min(history, key=lambda r: r["eval_loss"])
  kept = base.read_eval_results(str(out / "best" / "eval_results.txt"))
  assert kept == {k: best[k] for k in ("eval_accuracy", "eval_loss", "global_step")}
  assert sorted(p.name for p in (out / "best").glob("*.index")) == [
      f"model.ckpt-{best['global_step']}.index"]
  assert base.read_eval_results(str(out / "eval_results.txt"))["global_step"] == 12
  # Evaluate the kept model on its own: same dev loss.
  again = tmp_path / "again"
  shutil.copytree(out / "best", again)
  shutil.copy(out / classifier.POOLING_FILE, again)
  run(again, "--do_eval")
  assert base.read_eval_results(str(again / "eval_results.txt"))["eval_loss"] == (
      pytest.approx(best["eval_loss"], abs=1e-6))
  assert len({r["eval_loss"] for r in history}) == 3  # the choice was not a tie
  # Usage errors: one line, no traceback.
  bad = subprocess.run([sys.executable, os.path.join(root, "run_scripts", "run_classifier.py"),
                        "--task_name=RTE", f"--data_dir={tmp_path}",
                        f"--vocab_file={uncased_vocab}",
                        f"--bert_config_file={config}", f"--output_dir={tmp_path / 'bad'}",
                        "--max_seq_length=32", "--do_train", "--keep_best_checkpoint"],
                       capture_output=True, text=True, timeout=300, check=False,
                       env=dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="2"))
  assert bad.returncode != 0 and "--eval_every_steps" in bad.stderr
  assert "Traceback" not in bad.stderr
