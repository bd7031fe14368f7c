"""Multi-host from the command line: run_pretraining and run_classifier as 2 localhost workers
(TF_CONFIG, --distribution_strategy=multi_worker_mirrored) end with the weights of one process
with 2 mirrored replicas (--distribution_strategy=mirrored on 2 logical CPUs), and both workers
hold the same weights.

Replica i reads input shard i wherever it runs, so both layouts see the same per-replica batches;
the all-reduce order is the only difference, hence a float-sum tolerance.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import training_helper as th

pytestmark = pytest.mark.multiprocess  # CI: a step of its own (.ci/run)
HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "training_helper.py")


def _env(**extra):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_CONFIG", None)
  return dict(env, **extra)


def _free_ports(n):
  socks = [socket.socket() for _ in range(n)]
  for s in socks:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in socks]
  for s in socks:
    s.close()
  return ports


def _mirrored(job, flags, weights):
  """One process, 2 replicas (2 logical CPUs)."""
  cmd = [sys.executable, HELPER, "cli", job, "2", str(weights), *flags,
         "--distribution_strategy=mirrored"]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_env(),
                        check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "with 2 replica(s) in sync" in proc.stderr
  return np.load(weights)


def _two_workers(job, flags, weights_dir, expect="with 2 replica(s) in sync"):
  """Two processes, one replica each, as two hosts would run the documented command; `expect`
  must be in both workers' logs."""
  workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
  procs = []
  try:
    for i in range(2):
      tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker",
                                                                        "index": i}})
      procs.append(subprocess.Popen(
          [sys.executable, HELPER, "cli", job, "1", str(weights_dir / f"worker{i}.npz"), *flags,
           "--distribution_strategy=multi_worker_mirrored"],
          env=_env(TF_CONFIG=tf_config), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
          text=True))
    errors = [p.communicate(timeout=600)[1] for p in procs]
    for p, err in zip(procs, errors):
      assert p.returncode == 0, err[-3000:]
      assert "with 2 replica(s) in sync" in err
      assert expect in err, err[-3000:]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  return [np.load(weights_dir / f"worker{i}.npz") for i in range(2)]


def _check(mirrored, workers):
  w0, w1 = workers
  assert w0.files == w1.files == mirrored.files
  for k in w0.files:
    np.testing.assert_array_equal(w0[k], w1[k])  # one all-reduce result on both workers
  worst = max(float(np.max(np.abs(mirrored[k] - w0[k]))) for k in w0.files)
  assert worst <= 1e-5, worst
  # The weights moved: a run that ignored its data or skipped steps would not match by accident.
  assert max(float(np.max(np.abs(mirrored[k]))) for k in mirrored.files) > 0


@pytest.fixture(scope="module")
def config(tmp_path_factory):
  path = tmp_path_factory.mktemp("config") / "bert_config.json"
  th.tiny_config(dropout=0.0).to_json_file(str(path))
  return str(path)


def test_run_pretraining_two_workers_equal_two_mirrored_replicas(data_dir, config, tmp_path):
  records = th.make_records(data_dir, str(tmp_path))
  def flags(out):
    return [f"--bert_config_file={config}", f"--input_file={','.join(records)}",
            f"--output_dir={tmp_path / out}", "--do_train", f"--max_seq_length={th.SEQ}",
            f"--max_predictions_per_seq={th.PRED}", "--num_train_steps=3",
            "--num_warmup_steps=1", "--learning_rate=1e-3", "--train_batch_size=8",
            "--steps_per_loop=1", "--save_checkpoints_steps=1"]
  mirrored = _mirrored("run_pretraining", flags("mirrored"), tmp_path / "mirrored.npz")
  workers = _two_workers("run_pretraining", flags("mwms"), tmp_path)
  _check(mirrored, workers)
  names = sorted(os.listdir(tmp_path / "mwms"))
  assert "model.ckpt-3.index" in names and ".tmp_worker1" not in names, names
  # Killed after the step-1 checkpoint, then restarted: both workers resume to the same weights.
  out = tmp_path / "mwms"
  for name in names:
    if name.startswith(("model.ckpt-2", "model.ckpt-3")):
      os.remove(out / name)
  (out / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-1"\n'
                                  'all_model_checkpoint_paths: "model.ckpt-1"\n')
  (tmp_path / "resumed").mkdir()
  resumed = _two_workers("run_pretraining", flags("mwms"), tmp_path / "resumed",
                         expect="Resuming at step 1 of 3")
  for k in workers[0].files:
    for w in resumed:
      np.testing.assert_array_equal(w[k], workers[0][k])


_COLA = ["our friends won't buy this analysis, let alone the next one we propose.",
         "one more pseudo generalization and i'm giving up.",
         "the more we study verbs, the crazier they get.",
         "day by day the facts are getting murkier.",
         "they drank the pub.", "the professor talked us into a stupor.",
         "we yelled ourselves hoarse.", "the cat sat on the mat happily.",
         "harry coughed himself into a fit.", "this is the dog that chased the cat.",
         "the witch vanished into the forest.", "bill whistled himself out of the room.",
         "the more you read, the less you know.", "they made him angry.",
         "he wiped the table clean.", "books were taken by the students."]


def test_run_classifier_two_workers_equal_two_mirrored_replicas(uncased_vocab, config,
                                                                 tmp_path):
  data = tmp_path / "CoLA"
  data.mkdir()
  (data / "train.tsv").write_text("".join(f"gj04\t{i % 2}\t\t{s}\n"
                                          for i, s in enumerate(_COLA)))
  def flags(out):
    return ["--task_name=CoLA", f"--data_dir={data}", f"--vocab_file={uncased_vocab}",
            f"--bert_config_file={config}", f"--output_dir={tmp_path / out}", "--do_train",
            f"--max_seq_length={th.SEQ}", "--train_batch_size=4", "--num_train_epochs=1",
            "--learning_rate=1e-3", "--iterations_per_loop=2", "--save_checkpoints_steps=4"]
  mirrored = _mirrored("run_classifier", flags("mirrored"), tmp_path / "mirrored.npz")
  workers = _two_workers("run_classifier", flags("mwms"), tmp_path)
  _check(mirrored, workers)
  assert (tmp_path / "mwms" / "model.ckpt-4.index").exists()
