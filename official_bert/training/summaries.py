"""TensorBoard summaries and periodic evaluation records of a training run.

Layout of output_dir (as the Estimator's): train/ holds the train scalars (loss, each loss term,
global_norm, learning_rate, examples_per_second) and a `config` text summary; eval/ holds one
scalar per metric the job reports, at its global step. Periodic evaluation also writes
eval_history.jsonl (one {"global_step": N, metric: value} line per evaluation) and, with a best
metric, best/ (the model of the best evaluation, `model.ckpt-<step>`, and its eval_results.txt).
GR's eval_results.txt in output_dir stays the job's final-checkpoint result.
"""

import json
import math
import os

from absl import logging
import tensorflow as tf

from official_bert import utils

EVAL_HISTORY = "eval_history.jsonl"
BEST_DIR = "best"


class Writers:
  """The train/ and eval/ summary writers of output_dir (no-ops when not enabled)."""

  def __init__(self, output_dir, enabled=True):
    self.output_dir, self.enabled = output_dir, enabled
    self._writers = {}

  def _writer(self, name):
    if name not in self._writers:
      self._writers[name] = (tf.summary.create_file_writer(os.path.join(self.output_dir, name))
                             if self.enabled else tf.summary.create_noop_writer())
    return self._writers[name]

  def scalars(self, run, step, values):
    with self._writer(run).as_default():
      for name, value in values.items():
        tf.summary.scalar(name, float(value), step=step)

  def train_scalars(self, step, values):
    self.scalars("train", step, values)

  def eval_scalars(self, step, values):
    self.scalars("eval", step, {k: v for k, v in values.items() if k != "global_step"})
    self._writer("eval").flush()

  def config_text(self, config, step):
    """The run's settings as a two-column markdown table (TensorBoard's Text tab)."""
    rows = ["| setting | value |", "|---|---|"]
    rows += [f"| {k} | `{v}` |" for k, v in sorted(config.items())]
    with self._writer("train").as_default():
      tf.summary.text("config", "\n".join(rows), step=step)

  def flush(self):
    for w in self._writers.values():
      w.flush()


def read_history(output_dir):
  """The eval_history.jsonl records of output_dir ([] if none)."""
  path = os.path.join(output_dir, EVAL_HISTORY)
  if not tf.io.gfile.exists(path):
    return []
  with tf.io.gfile.GFile(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def lower_is_better(metric):
  return "loss" in metric


class EvalTracker:
  """Runs the periodic evaluation of train(): summaries, history and the best checkpoint."""

  def __init__(self, output_dir, writers, best_metric=None, best_dir=None, chief=True,
               start_step=0):
    self.output_dir, self.writers, self.best_metric = output_dir, writers, best_metric
    self.best_dir = best_dir or os.path.join(output_dir, BEST_DIR)
    self.chief = chief
    # A resumed run keeps the evaluations before its start (a killed run's later ones are redone).
    self.history = [r for r in read_history(output_dir) if r["global_step"] <= start_step]
    self.best = None
    best_results = os.path.join(self.best_dir, "eval_results.txt")
    if best_metric and tf.io.gfile.exists(best_results):
      from official_bert.tasks import base  # pylint: disable=import-outside-toplevel
      self.best = base.read_eval_results(best_results).get(best_metric)
    self._manager = None

  def _better(self, value):
    if value is None or math.isnan(value):
      return False
    if self.best is None:
      return True
    return value < self.best if lower_is_better(self.best_metric) else value > self.best

  def evaluate(self, eval_fn, model, step):
    logging.info("***** Periodic evaluation at step %d *****", step)
    results = {k: float(v) for k, v in eval_fn(model, step).items()}
    results["global_step"] = step
    logging.info("eval at step %d: %s", step,
                 " ".join(f"{k}={v:.4f}" for k, v in sorted(results.items())
                          if k != "global_step"))
    if self.best_metric and self.best_metric not in results:
      raise ValueError(f"--best_metric={self.best_metric} is not a metric of this job; it "
                       f"reports {', '.join(sorted(k for k in results if k != 'global_step'))}")
    self.writers.eval_scalars(step, results)
    self.history = [r for r in self.history if r["global_step"] != step] + [results]
    if self.chief:
      with utils.atomic_open(os.path.join(self.output_dir, EVAL_HISTORY)) as f:
        for r in self.history:
          f.write(json.dumps(r, sort_keys=True) + "\n")
    if self.best_metric and self._better(results[self.best_metric]):
      self._keep_best(model, step, results)
    return results

  def _keep_best(self, model, step, results):
    from official_bert.training import loop  # pylint: disable=import-outside-toplevel
    if self._manager is None:
      self._manager = tf.train.CheckpointManager(loop.build_checkpoint(model), self.best_dir,
                                                 max_to_keep=1,
                                                 checkpoint_name=loop.CHECKPOINT_NAME)
    path = self._manager.save(checkpoint_number=step)
    self.best = results[self.best_metric]
    if self.chief:
      from official_bert.tasks import base  # pylint: disable=import-outside-toplevel
      base.write_eval_results(os.path.join(self.best_dir, "eval_results.txt"), results)
      logging.info("New best %s=%.4f at step %d: kept %s", self.best_metric, self.best, step,
                   path)
