"""The package installs as people install it: a wheel, imported from outside the checkout, with
every console script declared in pyproject.toml answering --helpfull with GR's flags."""

import configparser
import concurrent.futures
import glob
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A few of GR's flags each job must show (the names GR's scripts define).
GR_FLAGS = {
    "bert-create-pretraining-data": ["input_file", "output_file", "vocab_file", "do_whole_word_mask",
                                     "dupe_factor", "short_seq_prob"],
    "bert-run-pretraining": ["input_file", "bert_config_file", "num_train_steps",
                             "max_predictions_per_seq", "iterations_per_loop"],
    "bert-run-classifier": ["task_name", "data_dir", "do_lower_case", "warmup_proportion",
                            "num_train_epochs"],
    "bert-run-squad": ["train_file", "predict_file", "doc_stride", "version_2_with_negative",
                       "null_score_diff_threshold"],
    "bert-extract-features": ["layers", "input_file", "output_file"],
}


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory):
  """The project built as a wheel and installed (no deps) into a folder of its own."""
  work = tmp_path_factory.mktemp("wheel")
  subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                  "-w", str(work), ROOT], check=True, capture_output=True, cwd=str(work))
  wheel, = glob.glob(str(work / "official_bert-*.whl"))
  site = work / "site"
  subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site),
                  wheel], check=True, capture_output=True, cwd=str(work))
  return wheel, site


def _console_scripts(wheel):
  with zipfile.ZipFile(wheel) as z:
    name, = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(z.read(name).decode())
  return dict(parser["console_scripts"])


def test_wheel_holds_the_library_only_and_imports_outside_the_checkout(wheel_site, tmp_path):
  wheel, site = wheel_site
  with zipfile.ZipFile(wheel) as z:
    top = {n.split("/")[0] for n in z.namelist()}
  assert {t for t in top if not t.endswith(".dist-info")} == {"official_bert"}
  code = ("import official_bert, official_bert.cli, official_bert.serving; "
          "print(official_bert.__file__)")
  out = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), check=True, text=True,
                       capture_output=True, env=dict(os.environ, PYTHONPATH=str(site)))
  assert out.stdout.strip().startswith(str(site))


def test_every_console_script_answers_helpfull_with_grs_flags(wheel_site, tmp_path):
  wheel, site = wheel_site
  scripts = _console_scripts(wheel)
  for name in GR_FLAGS:
    assert name in scripts
  env = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="3")

  def helpfull(item):
    name, target = item
    module, func = target.split(":")
    code = f"import sys; sys.argv = [{name!r}, '--helpfull']; import {module} as m; m.{func}()"
    return name, subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env,
                                text=True, capture_output=True)

  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    results = dict(pool.map(helpfull, sorted(scripts.items())))
  for name, proc in results.items():
    assert proc.returncode == 0, (name, proc.stderr[-2000:])
    for flag in GR_FLAGS.get(name, ["helpfull"]):
      assert f"--{flag}" in proc.stdout, (name, flag)
