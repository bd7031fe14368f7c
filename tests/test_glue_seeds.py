"""benchmarks/glue_seeds.py's bookkeeping (no training): the QNLI dev halves, the HF side's TSV
reader against our processors, the resumable JSON lines and the mean ± std table."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "glue_seeds.py")

# In a process of its own: glue_seeds defines absl flags (--data_dir...) that the run scripts'
# modules define too.
_HALVES = r"""
import json, sys
from absl import flags
from benchmarks import glue_seeds, hf_finetune
flags.FLAGS([sys.argv[0], "--data_dir=" + sys.argv[1]])
d = glue_seeds.task_data_dir("QNLI", sys.argv[2])
print(json.dumps({n: hf_finetune.read_glue("qnli", d + "/" + n) for n in ("train.tsv", "dev.tsv")}))
"""


def _env():
  return dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")


def test_qnli_dev_halves_keep_the_header_and_every_row_once(tmp_path):
  glue = tmp_path / "glue"
  (glue / "QNLI").mkdir(parents=True)
  rows = [f"{i}\tquestion {i}?\tsentence {i}.\t{'entailment' if i % 3 else 'not_entailment'}"
          for i in range(7)]
  (glue / "QNLI" / "dev.tsv").write_text("index\tquestion\tsentence\tlabel\n" + "\n".join(rows)
                                         + "\n")
  out = subprocess.run([sys.executable, "-c", _HALVES, str(glue), str(tmp_path / "work")],
                       capture_output=True, text=True, env=_env(), check=True)
  halves = json.loads(out.stdout.strip().splitlines()[-1])
  # First half (rows 0-2) trains, second half (3-6) evaluates; entailment is label id 0.
  assert halves["train.tsv"] == [["question 0?", "sentence 0.", 1], ["question 1?", "sentence 1.", 0],
                                 ["question 2?", "sentence 2.", 0]]
  assert [r[0] for r in halves["dev.tsv"]] == [f"question {i}?" for i in (3, 4, 5, 6)]
  assert [r[2] for r in halves["dev.tsv"]] == [1, 0, 0, 1]
  # Our processor reads the same pairs and labels from the written files.
  from official_bert.data import classifier  # pylint: disable=import-outside-toplevel
  proc = classifier.get_processor("qnli")
  ours = proc.get_train_examples(str(tmp_path / "work" / "data" / "QNLI-dev-halves"))
  assert [(e.text_a, e.text_b, proc.get_labels().index(e.label)) for e in ours] == [
      tuple(r) for r in halves["train.tsv"]]


def test_hf_reader_matches_our_processors(data_dir):
  # The HF side reads the TSVs itself (no TF in its process): the same pairs and label ids as
  # GR's processors, on the real dev files.
  from benchmarks import hf_finetune  # pylint: disable=import-outside-toplevel
  from official_bert.data import classifier  # pylint: disable=import-outside-toplevel
  for task in ("CoLA", "SST-2", "MRPC", "QNLI", "WNLI"):
    proc = classifier.get_processor(task)
    want = [(e.text_a, e.text_b, proc.get_labels().index(e.label))
            for e in proc.get_dev_examples(os.path.join(data_dir, "glue", task))]
    got = hf_finetune.read_glue(task, os.path.join(data_dir, "glue", task, "dev.tsv"))
    assert got == want, task


def test_report_table_means_spreads_and_differences(tmp_path):
  records = [dict(task="CoLA", side=side, seed=s, metrics={"mcc": m, "accuracy": 70.0},
                  wall_s=10.0 * s)
             for side, values in (("hf", (30.0, 32.0, 34.0)), ("bc", (31.0, 35.0, 36.0)))
             for s, m in zip((1, 2, 3), values)]
  out_file = tmp_path / "runs.jsonl"
  out_file.write_text("".join(json.dumps(r) + "\n" for r in records))
  res = subprocess.run([sys.executable, SCRIPT, f"--output_file={out_file}", "--report_only"],
                       capture_output=True, text=True, env=_env(), check=True)
  lines = {tuple(c.strip() for c in line.split("|")[1:4]): line for line in res.stdout.splitlines()
           if line.startswith("| CoLA")}
  # hf: mean 32, sample std 2; bc: mean 34, std sqrt(7) = 2.65, 34 - 32 = +2.
  assert "32.00 ± 2.00 [30.00-34.00]" in lines[("CoLA", "mcc", "hf")]
  assert "34.00 ± 2.65 [31.00-36.00]" in lines[("CoLA", "mcc", "bc")]
  assert lines[("CoLA", "mcc", "bc")].rstrip().endswith("| +2.00 |")
  assert "| 20 |" in lines[("CoLA", "mcc", "bc")]  # mean wall seconds
