"""WORKSPACE.md's Cloud TPU walkthrough, its python commands as written, on CPU with local paths.

The bucket becomes a temporary folder and the sizes tiny (flags appended: absl takes the last
value). What runs: the data step's output names feeding the training step's --input_file glob;
--use_tpu without a TPU failing in one clear line; the training command with --nouse_tpu and
--jit_compile (the XLA-compiled step a TPU runs, bfloat16, static shapes), its eval, checkpoints
and the summaries TensorBoard reads; the LAMB variant. gcloud, pip and a real TPU are not run.
"""

import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

import training_helper as th

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_TRAIN = ["--train_batch_size=8", "--num_train_steps=4", "--num_warmup_steps=2",
              "--steps_per_loop=2", "--save_checkpoints_steps=2", "--max_eval_steps=2",
              "--eval_batch_size=8"]


def walkthrough():
  """{"data": argv, "train": argv, "lamb": extra flags} from WORKSPACE.md's code block."""
  text = open(os.path.join(ROOT, "WORKSPACE.md"), encoding="utf-8").read()
  block = text.split("### Cloud TPU VM walkthrough", 1)[1].split("```", 2)[1]
  lines = block.replace("\\\n", " ").splitlines()
  commands = [shlex.split(l) for l in lines if l.startswith("python ")]
  lamb = next(l for l in lines if l.startswith("# LAMB")).split(":", 1)[1].split()
  by_script = {os.path.basename(c[1]): c for c in commands}
  assert set(by_script) == {"create_pretraining_data.py", "run_pretraining.py"}, by_script
  return {"data": by_script["create_pretraining_data.py"],
          "train": by_script["run_pretraining.py"], "lamb": lamb}


def _local(argv, bucket, corpus, vocab):
  out = [sys.executable, os.path.join(ROOT, argv[1])]
  for arg in argv[2:]:
    arg = arg.replace("gs://$BUCKET", str(bucket))  # shlex already joined 'gs://'$BUCKET'/...'
    arg = arg.replace("=corpus/*.txt", f"={corpus}").replace("--vocab_file=vocab.txt",
                                                             f"--vocab_file={vocab}")
    out.append(arg)
  return out


def _run(cmd, check=True):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_CONFIG", None)
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, check=False)
  if check:
    assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


@pytest.fixture(scope="module")
def walk(tmp_path_factory, data_dir, uncased_vocab):
  bucket = tmp_path_factory.mktemp("bucket")
  (bucket / "bert_base").mkdir()
  (bucket / "pt").mkdir()  # a bucket has no folders to make; a local disk does
  config = th.tiny_config()
  config.max_position_embeddings = 128
  config.to_json_file(str(bucket / "bert_base" / "bert_config.json"))
  corpus = os.path.join(data_dir, "sample_text", "sample_text.txt")
  steps = walkthrough()
  data = _local(steps["data"], bucket, corpus, uncased_vocab)
  assert "$" not in " ".join(data) and "gs:" not in " ".join(data), data
  _run(data + ["--output_shards=4", "--dupe_factor=2"])
  train = _local(steps["train"], bucket, corpus, uncased_vocab)
  assert "$" not in " ".join(train) and "gs:" not in " ".join(train), train
  return bucket, train, steps["lamb"]


def test_data_step_names_match_the_training_glob(walk):
  bucket, train, _ = walk
  pattern = next(a.split("=", 1)[1] for a in train if a.startswith("--input_file="))
  made = sorted(glob.glob(os.path.join(bucket, "pt", "*")))
  assert len(made) == 4, made
  assert sorted(glob.glob(pattern)) == made, (pattern, made)


def test_use_tpu_without_a_tpu_is_one_clear_line(walk):
  _, train, _ = walk
  proc = _run(train, check=False)
  assert proc.returncode != 0
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert re.match(r"error: --use_tpu .*no TPU at --tpu_name='local'.*drop --use_tpu", last), last


def test_training_step_on_cpu_with_xla(walk):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  bucket, train, lamb = walk
  _run(train + ["--nouse_tpu", "--jit_compile"] + TINY_TRAIN)
  out = bucket / "pt_out"
  assert tf.train.latest_checkpoint(str(out)).endswith("model.ckpt-4")
  results = dict(l.split(" = ") for l in (out / "eval_results.txt").read_text().splitlines())
  assert int(results["global_step"]) == 4 and float(results["masked_lm_loss"]) > 0
  # `tensorboard --logdir=.../pt_out` reads these event files.
  tags = set()
  for path in glob.glob(str(out / "train" / "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  assert {"loss", "learning_rate", "masked_lm_accuracy"} <= tags, tags
  # The LAMB variant of the same command.
  proc = _run(train + lamb + ["--nouse_tpu", "--jit_compile", "--nodo_eval",
                              f"--output_dir={bucket / 'pt_lamb'}"] + TINY_TRAIN)
  assert "optimizer" in " ".join(lamb) and re.search(r"step 4/4 loss=", proc.stderr)
