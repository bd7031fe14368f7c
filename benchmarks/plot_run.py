"""Plots a training run: loss and learning rate vs step, eval metrics vs step, as one PNG.

  python benchmarks/plot_run.py --run_dir=/tmp/mrpc_output --output_file=/tmp/mrpc.png

Reads what the training loop writes in output_dir: TensorBoard events of train/ (loss, each loss
term, learning_rate) and eval/ (one scalar per metric; periodic evaluation), else the
eval_history.jsonl / eval_results.txt records. Several --run_dir (comma-separated) share the
axes, for comparing runs. Needs matplotlib.
"""

import os

from absl import app
from absl import flags
from absl import logging

FLAGS = flags.FLAGS
flags.DEFINE_list("run_dir", None, "Output directories of runs (comma-separated).")
flags.DEFINE_string("output_file", None, "The PNG to write.")
flags.DEFINE_list("metrics", None, "Eval metrics to plot (default: every metric but "
                  "global_step and the losses).")
flags.DEFINE_string("title", None, "Figure title (default: the run directories).")


def read_scalars(run_dir):
  """{tag: [(step, value)]} of the event files in run_dir (sorted by step; last write wins)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  values = {}
  for path in sorted(tf.io.gfile.glob(os.path.join(run_dir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        if v.HasField("tensor"):
          array = tf.make_ndarray(v.tensor)
          if array.dtype.kind not in "fiu" or array.size != 1:
            continue  # text summaries
          value = float(array.reshape(()))
        else:
          value = v.simple_value
        values.setdefault(v.tag, {})[event.step] = value
  return {tag: sorted(steps.items()) for tag, steps in values.items()}


def eval_series(run_dir):
  """{metric: [(step, value)]}: eval/ events, else eval_history.jsonl, else eval_results.txt."""
  from official_bert.training import summaries  # pylint: disable=import-outside-toplevel
  series = read_scalars(os.path.join(run_dir, "eval"))
  if series:
    return series
  records = summaries.read_history(run_dir)
  final = os.path.join(run_dir, "eval_results.txt")
  if not records and os.path.exists(final):
    from official_bert.tasks import base  # pylint: disable=import-outside-toplevel
    records = [base.read_eval_results(final)]
  out = {}
  for r in records:
    for k, v in r.items():
      if k != "global_step":
        out.setdefault(k, []).append((int(r.get("global_step", 0)), float(v)))
  return out


def plot(run_dirs, output_file, metrics=None, title=None):
  """Writes the PNG; returns {run_dir: {panel: [tags]}} (what was drawn)."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  runs = {d: (read_scalars(os.path.join(d, "train")), eval_series(d)) for d in run_dirs}
  if not any(train or ev for train, ev in runs.values()):
    raise ValueError(f"no train/ or eval/ events and no eval results in {', '.join(run_dirs)}")
  fig, (ax_loss, ax_lr, ax_eval) = plt.subplots(1, 3, figsize=(15, 4.2))
  drawn = {}
  for run_dir, (train, ev) in runs.items():
    name = os.path.basename(os.path.normpath(run_dir))
    losses = [t for t in sorted(train) if t == "loss" or t.endswith("_loss")]
    for tag in losses:
      steps, vals = zip(*train[tag])
      ax_loss.plot(steps, vals, label=f"{name} {tag}" if len(runs) > 1 else tag,
                   linewidth=1.8 if tag == "loss" else 1.0)
    if "learning_rate" in train:
      steps, vals = zip(*train["learning_rate"])
      ax_lr.plot(steps, vals, label=name)
    wanted = metrics or [m for m in sorted(ev) if "loss" not in m]
    shown = [m for m in wanted if m in ev]
    for m in shown:
      steps, vals = zip(*ev[m])
      ax_eval.plot(steps, vals, marker="o", label=f"{name} {m}" if len(runs) > 1 else m)
      # The last value in figures: a single end-of-run evaluation is one dot otherwise.
      ax_eval.annotate(f"{vals[-1]:.4g}", (steps[-1], vals[-1]), textcoords="offset points",
                       xytext=(4, 4), fontsize=8)
    drawn[run_dir] = {"loss": losses, "learning_rate": ["learning_rate"] * ("learning_rate"
                                                                              in train),
                      "eval": shown}
  for ax, label in ((ax_loss, "train loss"), (ax_lr, "learning rate"), (ax_eval, "eval")):
    ax.set_xlabel("step")
    ax.set_title(label)
    ax.grid(alpha=0.3)
    if ax.lines:
      ax.legend(fontsize=8)
  fig.suptitle(title or ", ".join(run_dirs), fontsize=10)
  fig.tight_layout()
  tmp = f"{output_file}.tmp-{os.getpid()}.png"
  fig.savefig(tmp, dpi=100)
  plt.close(fig)
  os.replace(tmp, output_file)
  return drawn


def main(_):
  logging.set_verbosity(logging.INFO)
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel,unused-import
  except ImportError as e:
    raise app.UsageError("matplotlib is not installed: pip install matplotlib") from e
  for d in FLAGS.run_dir:
    if not os.path.isdir(d):
      raise app.UsageError(f"--run_dir: {d} is not a directory")
  try:
    drawn = plot(FLAGS.run_dir, FLAGS.output_file, FLAGS.metrics, FLAGS.title)
  except ValueError as e:
    raise app.UsageError(str(e))  # pylint: disable=raise-missing-from
  for run_dir, panels in drawn.items():
    logging.info("%s: %s", run_dir, "; ".join(f"{k}: {', '.join(v) or '-'}"
                                               for k, v in panels.items()))
  logging.info("Wrote %s", FLAGS.output_file)


if __name__ == "__main__":
  flags.mark_flags_as_required(["run_dir", "output_file"])
  app.run(main)
