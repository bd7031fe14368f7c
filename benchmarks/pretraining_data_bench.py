"""GR's create_pretraining_data vs ours (compat and scale mode) on the same input, in one run.

  python benchmarks/pretraining_data_bench.py --input_file=F --vocab_file=V [--dupe_factor=5] \
    [--rounds=3]

Each run is its own process (wall time and peak RSS from the OS, start-up included); the three
candidates run in alternating rounds (order rotated each round, the machine is shared) and the
figures are medians. Two ratios to GR per mode: end to end (the whole process, as a user waits for
it) and work only (first log line of main to "Wrote N total instances": excludes interpreter and
import start-up). A start-up probe runs each on the first 50 lines of the input. Last line:
`e2e_compat=<x> e2e_scale=<y> work_compat=<x> work_scale=<y> startup50_compat_s=<s>
startup50_scale_s=<s> startup50_max_rss_mib=<m> identical=<true|false>` (identical: compat
records equal GR's).
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string("input_file", None, "Input text (GR's format: sentence per line).")
flags.DEFINE_string("vocab_file", None, "WordPiece vocab.")
flags.DEFINE_bool("do_lower_case", True, "Lower case.")
flags.DEFINE_integer("dupe_factor", 5, "GR's dupe_factor.")
flags.DEFINE_integer("num_workers", 2, "Scale mode workers (0: one per core).")
flags.DEFINE_integer("output_shards", 4, "Scale mode shards.")
flags.DEFINE_integer("rounds", 3, "Alternating rounds of the three runs (0: start-up probe only).")
flags.DEFINE_integer("startup_rounds", 5, "Rounds of the 50-line start-up probe.")
FLAGS = flags.FLAGS


_STAMP = re.compile(r"^[IWE]\d{4} (\d\d):(\d\d):(\d\d\.\d+) ")


def _work_seconds(log_path):
  """Seconds from the first absl log line of main() to "Wrote N total instances"."""
  first = last = None
  with open(log_path, encoding="utf-8") as f:
    for line in f:
      m = _STAMP.match(line)
      if not m or "cuda" in line.lower():
        continue
      t = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
      if first is None and ("Reading from input" in line or "Loaded " in line):
        first = t
      if "total instances" in line:
        last = t
  return (last - first) % 86400


def _read_records(path):
  """Records of a TFRecord file (framing checked by TensorFlow's reader)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return list(tf.data.TFRecordDataset(path).as_numpy_iterator())


def _count_and_compare(gr_path, our_path, scale_paths):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  gr = [tf.train.Example.FromString(r) for r in _read_records(gr_path)]
  ours = [tf.train.Example.FromString(r) for r in _read_records(our_path)]
  n_scale = sum(len(_read_records(p)) for p in scale_paths)
  return len(gr), len(ours), n_scale, len(gr) == len(ours) and all(a == b for a, b in zip(gr, ours))


def _commands(input_file, out_dir):
  py = sys.executable
  common = [f"--input_file={input_file}", f"--vocab_file={FLAGS.vocab_file}",
            f"--do_lower_case={FLAGS.do_lower_case}", f"--dupe_factor={FLAGS.dupe_factor}"]
  ours = [py, "-m", "official_bert.cli.create_pretraining_data"]
  return {
      "gr": [py, os.path.join(ROOT, "tests", "gr_reference.py"), "create_pretraining_data",
             f"--output_file={os.path.join(out_dir, 'gr.tfrecord')}", *common],
      "compat": [*ours, f"--output_file={os.path.join(out_dir, 'ob.tfrecord')}", *common],
      "scale": [*ours, f"--output_file={os.path.join(out_dir, 'sc')}",
                f"--num_workers={FLAGS.num_workers}", f"--output_shards={FLAGS.output_shards}",
                *common],
  }


def _measure(cmd, log):
  """(wall s, peak RSS MiB of the largest process, work s, CPU s of all processes) of a run."""
  # RUSAGE_CHILDREN's maxrss is a running max, so each run gets a fresh measuring process.
  probe = [sys.executable, "-c",
           "import resource, subprocess, sys, time; t = time.perf_counter();"
           f"subprocess.run(sys.argv[1:], check=True, stderr=open({log!r}, 'w'));"
           "r = resource.getrusage(resource.RUSAGE_CHILDREN);"
           "print(time.perf_counter() - t, r.ru_utime + r.ru_stime, r.ru_maxrss)",
           *cmd]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
  out = subprocess.run(probe, capture_output=True, text=True, check=False, env=env)
  if out.returncode:
    sys.stderr.write(out.stderr[-3000:] + open(log, encoding="utf-8").read()[-3000:])
    raise RuntimeError(f"{cmd} failed")
  wall, cpu, rss_kb = out.stdout.split()[-3:]
  return float(wall), int(rss_kb) / 1024.0, _work_seconds(log), float(cpu)


def _rounds(input_file, d, rounds):
  """name -> list of (wall, rss, work) over alternating rounds."""
  cmds = _commands(input_file, d)
  names = list(cmds)
  runs = {name: [] for name in names}
  for r in range(rounds):
    for name in names[r % 3:] + names[:r % 3]:
      runs[name].append(_measure(cmds[name], os.path.join(d, f"{name}.log")))
  return runs


def _median(values):
  return statistics.median(values)


def main(_):
  with tempfile.TemporaryDirectory() as d:
    small = os.path.join(d, "first50.txt")
    with open(FLAGS.input_file, encoding="utf-8", errors="ignore") as f, \
        open(small, "w", encoding="utf-8") as out:
      out.writelines(line for _, line in zip(range(50), f))
    start = _rounds(small, d, FLAGS.startup_rounds)
    print("50-line input (start-up), medians: " + ", ".join(
        f"{name} {_median(r[0] for r in rs):.2f} s wall, {_median(r[3] for r in rs):.2f} s CPU, "
        f"{_median(r[1] for r in rs):.0f} MiB" for name, rs in start.items()))
    if not FLAGS.rounds:
      return
    runs = _rounds(FLAGS.input_file, d, FLAGS.rounds)
    scale_files = [os.path.join(d, f) for f in os.listdir(d) if f.startswith("sc-")]
    n_gr, n_compat, n_scale, identical = _count_and_compare(
        os.path.join(d, "gr.tfrecord"), os.path.join(d, "ob.tfrecord"), scale_files)
  counts = {"gr": n_gr, "compat": n_compat, "scale": n_scale}
  print(f"input={FLAGS.input_file} ({os.path.getsize(FLAGS.input_file):,} bytes) "
        f"dupe_factor={FLAGS.dupe_factor} cores={os.cpu_count()} rounds={FLAGS.rounds} "
        f"num_workers={FLAGS.num_workers}")
  print(f"{'run':8s} {'instances':>10s} {'wall_s':>8s} {'inst/s':>9s} {'work_s':>8s} "
        f"{'work_inst/s':>12s} {'peak_rss_MiB':>13s}  (medians)")
  med = {}
  for name, rs in runs.items():
    wall, rss, work, _ = (_median(x) for x in zip(*rs))
    med[name] = (wall, rss, work)
    print(f"{name:8s} {counts[name]:10d} {wall:8.2f} {counts[name] / wall:9.0f} {work:8.2f} "
          f"{counts[name] / work:12.0f} {rss:13.0f}")
  # Ratios per round (same load), then their median.
  def ratio(mode, k):
    return _median((counts[mode] / ours[k]) / (counts["gr"] / gr[k])
                   for ours, gr in zip(runs[mode], runs["gr"]))
  e2e = {m: ratio(m, 0) for m in ("compat", "scale")}
  work = {m: ratio(m, 2) for m in ("compat", "scale")}
  print(f"rss_ratio compat/gr={med['compat'][1] / med['gr'][1]:.2f} "
        f"scale/gr={med['scale'][1] / med['gr'][1]:.2f} (scale: largest single process)")
  print(f"e2e_compat={e2e['compat']:.2f} e2e_scale={e2e['scale']:.2f} "
        f"work_compat={work['compat']:.2f} work_scale={work['scale']:.2f} "
        f"startup50_compat_s={_median(r[0] for r in start['compat']):.2f} "
        f"startup50_scale_s={_median(r[0] for r in start['scale']):.2f} "
        f"startup50_max_rss_mib={max(r[1] for m in ('compat', 'scale') for r in start[m]):.0f} "
        f"identical={'true' if identical else 'false'}")


if __name__ == "__main__":
  flags.mark_flag_as_required("input_file")
  flags.mark_flag_as_required("vocab_file")
  app.run(main)
