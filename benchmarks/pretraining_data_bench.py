"""GR's create_pretraining_data vs ours (compat and scale mode) on the same input, in one run.

  python benchmarks/pretraining_data_bench.py --input_file=F --vocab_file=V [--dupe_factor=5]

Each runs as its own process (wall time and peak RSS from the OS, startup included). Prints
instances/s, wall time and peak RSS of each, the ratios, and a last line
`compat_speedup=<x> scale_speedup=<y> identical=<true|false>` (identical: compat records equal GR's).
"""

import os
import re
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
flags.DEFINE_integer("num_workers", 0, "Scale mode workers (0: one per core).")
flags.DEFINE_integer("output_shards", 4, "Scale mode shards.")
FLAGS = flags.FLAGS


_STAMP = re.compile(r"^[IWE]\d{4} (\d\d):(\d\d):(\d\d\.\d+) ")


def _work_seconds(log_path):
  """Seconds from the first absl log line of main() to "Wrote N total instances".

  Excludes interpreter + TensorFlow import (the same in all three runs, and 5-30 s here depending
  on the machine's load), so the ratio reflects the data processing itself.
  """
  first = last = None
  with open(log_path) as f:
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


def _count_and_compare(gr_path, our_path, scale_paths):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  def examples(p):
    return [tf.train.Example.FromString(r) for r in tf.data.TFRecordDataset(p).as_numpy_iterator()]
  gr, ours = examples(gr_path), examples(our_path)
  n_scale = sum(1 for p in scale_paths for _ in tf.data.TFRecordDataset(p))
  return len(gr), len(ours), n_scale, len(gr) == len(ours) and all(a == b for a, b in zip(gr, ours))


def main(_):
  py = sys.executable
  common = [f"--input_file={FLAGS.input_file}", f"--vocab_file={FLAGS.vocab_file}",
            f"--do_lower_case={FLAGS.do_lower_case}", f"--dupe_factor={FLAGS.dupe_factor}"]
  with tempfile.TemporaryDirectory() as d:
    gr_out, our_out, scale_out = (os.path.join(d, n) for n in ("gr.tfrecord", "ob.tfrecord", "sc"))
    # RUSAGE_CHILDREN's maxrss is a running max, so each run gets a fresh measuring process.
    runs = {}
    for name, cmd in [
        ("gr", [py, os.path.join(ROOT, "tests", "gr_reference.py"), "create_pretraining_data",
                f"--output_file={gr_out}", *common]),
        ("compat", [py, os.path.join(ROOT, "data_prep", "create_pretraining_data.py"),
                    f"--output_file={our_out}", *common]),
        ("scale", [py, os.path.join(ROOT, "data_prep", "create_pretraining_data.py"),
                   f"--output_file={scale_out}", f"--num_workers={FLAGS.num_workers}",
                   f"--output_shards={FLAGS.output_shards}", *common]),
    ]:
      log = os.path.join(d, f"{name}.log")
      probe = [py, "-c", "import resource, subprocess, sys, time; t = time.perf_counter();"
               f"subprocess.run(sys.argv[1:], check=True, stderr=open({log!r}, 'w'));"
               "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
               *cmd]
      out = subprocess.run(probe, capture_output=True, text=True, check=False,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
      if out.returncode:
        sys.stderr.write(out.stderr[-3000:])
        raise RuntimeError(f"{name} failed")
      wall, rss_kb = out.stdout.split()[-2:]
      runs[name] = (float(wall), int(rss_kb) / 1024.0, _work_seconds(log))
    scale_files = [os.path.join(d, f) for f in os.listdir(d) if f.startswith("sc-")]
    n_gr, n_compat, n_scale, identical = _count_and_compare(gr_out, our_out, scale_files)
  counts = {"gr": n_gr, "compat": n_compat, "scale": n_scale}
  print(f"input={FLAGS.input_file} dupe_factor={FLAGS.dupe_factor} cores={os.cpu_count()}")
  print(f"{'run':8s} {'instances':>10s} {'wall_s':>8s} {'inst/s':>9s} {'work_s':>8s} "
        f"{'work_inst/s':>12s} {'peak_rss_MiB':>13s}")
  for name, (wall, rss, work) in runs.items():
    print(f"{name:8s} {counts[name]:10d} {wall:8.2f} {counts[name] / wall:9.0f} {work:8.2f} "
          f"{counts[name] / work:12.0f} {rss:13.0f}")
  ips = {k: counts[k] / runs[k][0] for k in runs}
  work_ips = {k: counts[k] / runs[k][2] for k in runs}
  print(f"rss_ratio compat/gr={runs['compat'][1] / runs['gr'][1]:.2f} "
        f"scale/gr={runs['scale'][1] / runs['gr'][1]:.2f} (scale: largest single process)")
  print(f"end_to_end_speedup compat={ips['compat'] / ips['gr']:.2f} "
        f"scale={ips['scale'] / ips['gr']:.2f} (incl. TF import)")
  # Headline: processing throughput (startup excluded), see _work_seconds.
  print(f"compat_speedup={work_ips['compat'] / work_ips['gr']:.2f} "
        f"scale_speedup={work_ips['scale'] / work_ips['gr']:.2f} "
        f"identical={'true' if identical else 'false'}")


if __name__ == "__main__":
  flags.mark_flag_as_required("input_file")
  flags.mark_flag_as_required("vocab_file")
  app.run(main)
