"""Runs many command lines of one entry point in one process (one TensorFlow import per job).

  python tests/cli_case_runner.py JOB CASES.json RESULTS.json

CASES.json: a list of argv lists (without the program name). Each case runs the job's entry
point as its console script does (cli.run: flag parsing, checks, main, the error convention),
with flags reset, stdout and stderr (file descriptors, so TensorFlow's C++ logs too) captured;
an exception escaping the entry point is printed as the interpreter would ("Traceback ...",
exit status 1). RESULTS.json: [{"status": int, "stderr": str}] in case order.
"""

import importlib
import json
import os
import sys
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

def _entry(job):
  return importlib.import_module(f"official_bert.cli.{job}").run


def run_case(entry, job, argv):
  from absl import flags  # pylint: disable=import-outside-toplevel
  flags.FLAGS.unparse_flags()
  with tempfile.TemporaryFile() as err, open(os.devnull, "w") as null:
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(null.fileno(), 1)
    os.dup2(err.fileno(), 2)
    status = 0
    try:
      sys.argv = [job] + list(argv)
      entry()
    except SystemExit as e:
      status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # pylint: disable=broad-except
      traceback.print_exc()
      status = 1
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      os.dup2(saved[0], 1)
      os.dup2(saved[1], 2)
      os.close(saved[0])
      os.close(saved[1])
    err.seek(0)
    text = err.read().decode("utf-8", "replace")
  if "keras" in sys.modules:
    sys.modules["keras"].backend.clear_session()
  return {"status": status, "stderr": text}


def main(job, cases_file, results_file):
  with open(cases_file, encoding="utf-8") as f:
    cases = json.load(f)
  entry = _entry(job)
  results = [run_case(entry, job, argv) for argv in cases]
  with open(results_file, "w", encoding="utf-8") as f:
    json.dump(results, f)


if __name__ == "__main__":
  main(*sys.argv[1:4])
