"""Data prep, pre-training and fine-tuning with every path on a non-local filesystem.

TensorFlow's `ram://` filesystem stands in for gs://: it lives in one process, so the three jobs
run one after another in one subprocess (each job module's flags are removed before the next is
imported). Nothing can reach a ram:// file through open() / os.path, so a job that bypasses
tf.io.gfile fails here; the subprocess's working directory must stay empty. (ram:// lists a
folder's name-prefix siblings too, so no folder name here is a prefix of another.)
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_JOBS = r'''
import importlib, os, sys
import tensorflow as tf
from absl import flags
import training_helper as th

FLAGS = flags.FLAGS
g = tf.io.gfile
data = sys.argv[1]
B = "ram://bucket"
g.makedirs(B + "/corpus")
g.makedirs(B + "/CoLA")
g.copy(os.path.join(data, "sample_text", "sample_text.txt"), B + "/corpus/sample_text.txt")
g.copy(os.path.join(data, "vocab", "bert-base-uncased-vocab.txt"), B + "/vocab.txt")
th.tiny_config().to_json_file(B + "/bert_config.json")
rows = [f"gj04\t{i % 2}\t\tsentence number {i} is here .\n" for i in range(8)]
with g.GFile(B + "/CoLA/train.tsv", "w") as f:
  f.write("".join(rows))
with g.GFile(B + "/CoLA/dev.tsv", "w") as f:
  f.write("".join(rows[:3]))
with g.GFile(B + "/CoLA/test.tsv", "w") as f:
  f.write("index\tsentence\n0\tanother sentence .\n1\tand one more .\n")


def job(module, argv):
  before = set(FLAGS)
  mod = importlib.import_module(module)
  FLAGS([module] + argv)
  try:
    mod.main([module])
  finally:
    for name in set(FLAGS) - before:
      delattr(FLAGS, name)
    sys.modules.pop(module)
    sys.modules.pop("official_bert.cli.common_flags", None)
  print("DONE", module, flush=True)


job("official_bert.cli.create_pretraining_data", [
    f"--input_file={B}/corpus/*.txt", f"--output_file={B}/records/tf_examples.tfrecord",
    f"--vocab_file={B}/vocab.txt", "--max_seq_length=32", "--max_predictions_per_seq=5",
    "--dupe_factor=1"])
job("official_bert.cli.run_pretraining", [
    f"--input_file={B}/records/tf_examples*", f"--output_dir={B}/pt_out",
    f"--bert_config_file={B}/bert_config.json", "--do_train", "--do_eval",
    "--max_seq_length=32", "--max_predictions_per_seq=5", "--num_train_steps=2",
    "--num_warmup_steps=1", "--train_batch_size=4", "--steps_per_loop=1",
    "--save_checkpoints_steps=2", "--max_eval_steps=1"])
job("official_bert.cli.run_classifier", [
    "--task_name=CoLA", f"--data_dir={B}/CoLA", f"--vocab_file={B}/vocab.txt",
    f"--bert_config_file={B}/pt_out/bert_config.json", f"--init_checkpoint={B}/pt_out",
    f"--output_dir={B}/cola_out", "--do_train", "--do_eval", "--do_predict",
    "--max_seq_length=32", "--train_batch_size=4", "--num_train_epochs=1"])
for d in ("records", "pt_out", "cola_out"):
  print(d, sorted(g.listdir(f"{B}/{d}")))
print("EVAL", g.GFile(B + "/cola_out/eval_results.txt").read().replace("\n", ";"))
'''


def test_data_prep_pretraining_finetuning_on_ram_filesystem(data_dir, tmp_path):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests"),
                                         os.environ.get("PYTHONPATH", "")]))
  env.pop("TF_CONFIG", None)
  work = tmp_path / "cwd"
  work.mkdir()
  proc = subprocess.run([sys.executable, "-c", _JOBS, data_dir], cwd=work, env=env,
                        capture_output=True, text=True, timeout=900, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  listing = dict(line.split(" ", 1) for line in proc.stdout.splitlines()
                 if line.split(" ", 1)[0] in ("records", "pt_out", "cola_out", "EVAL"))
  assert listing["records"] == "['tf_examples.tfrecord']"
  for name in ("bert_config.json", "eval_results.txt", "model.ckpt-2.index", "train"):
    assert f"'{name}'" in listing["pt_out"], listing["pt_out"]
  for name in ("model.ckpt-2.index", "eval_results.txt", "test_results.tsv", "CoLA.tsv",
               "train.tf_record", "eval.tf_record", "predict.tf_record"):
    assert f"'{name}'" in listing["cola_out"], listing["cola_out"]
  assert "global_step = 2" in listing["EVAL"]
  assert not os.listdir(work)  # nothing fell back to a local relative path
