"""The training-step benchmarks still run against the library (they reach into the loop's
internals, so a change there must not leave them broken): smallest sizes, one round, and the
figures they print are well formed. Speed itself is never asserted here."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--config=tiny", "--seq_len=16", "--max_predictions_per_seq=2", "--batch_size=4",
         "--rounds=1", "--steps=1", "--warmup_steps=1"]


def _bench(name, *argv):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
  res = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", name), *argv],
                       capture_output=True, text=True, env=env, timeout=900, check=False)
  assert res.returncode == 0, res.stderr[-3000:]
  return res.stdout.strip().splitlines()[-1]


def test_pretraining_bench_runs():
  last = _bench("pretraining_bench.py", *SMALL)
  assert re.fullmatch(r"vs_keras_hub=\d+\.\d+.*", last), last


def test_roofline_bench_runs():
  last = _bench("roofline_bench.py", "--configs=tiny", "--peak_n=128", "--peak_reps=1",
                *[f for f in SMALL if not f.startswith("--config=")])
  fractions = dict(kv.split("=") for kv in last.split())
  assert set(fractions) == {"tiny_pretraining_fraction_of_peak",
                            "tiny_finetuning_fraction_of_peak"}, last
  assert all(float(v) > 0 for v in fractions.values()), last
