"""THE training loop: shared by run_pretraining and every fine-tuning script.

A custom loop (`strategy.run` + `GradientTape` + a Keras optimizer), not `model.fit`: on TF 2.20 /
Keras 3, `fit` fails under MultiWorkerMirroredStrategy and under MirroredStrategy with
jit_compile, and it cannot all-reduce before GR's global-norm clip. One code path serves
OneDevice, Mirrored, MultiWorkerMirrored and TPU strategies.

Usage (what a run script does):

    task = loop.Task(build_model=lambda: models.BertClassifier(cfg, num_labels),
                     loss_fn=my_loss)              # (features, outputs) -> (loss, {name: scalar})
    settings = loop.RunSettings(output_dir=..., num_train_steps=..., train_batch_size=32,
                                steps_per_loop=100, save_checkpoints_steps=1000)
    def dataset_fn(ctx):                           # tf.distribute.InputContext -> tf.data.Dataset
      return inputs.tfrecord_dataset(files, decode, ctx.get_per_replica_batch_size(32), True, ctx)
    model = loop.train(task, strategy, dataset_fn, optimizer_fn=lambda: optimization.create_optimizer(
        lr, steps, warmup), settings=settings,
        init_fn=lambda m: checkpoints.restore_encoder(m, FLAGS.init_checkpoint))
    results = loop.evaluate(task, strategy, eval_dataset_fn, model, max_steps=100)
    for batch in loop.predict(strategy, predict_dataset_fn, model, keep_features=("unique_ids",)):
      ...                                          # dicts of numpy arrays, one per global batch

Contracts:
  * `build_model()` is called inside `strategy.scope()`; features are dicts of tensors with
    static batch size (drop_remainder=True) for TPU/XLA.
  * `loss_fn` returns the mean loss of the replica's batch. Gradients are averaged over replicas
    and over gradient-accumulation micro-batches (GR's TPU semantics: the mean of per-core means),
    all-reduced by the loop, then clipped to global norm 1.0 by the optimizer.
  * `train_batch_size` is the global batch per optimizer step; with
    gradient_accumulation_steps=k each replica splits its batch into k micro-batches.
  * Resume: `output_dir` holds `model.ckpt-<step>` checkpoints (model + optimizer, hence step and
    learning-rate schedule). Restarting with the same settings restores the latest and skips the
    batches already consumed, so an interrupted run ends with the same weights as a straight one
    (the dataset must be deterministic, as inputs.tfrecord_dataset is). `init_fn(model)` runs only
    when no checkpoint exists (fine-tuning from a pre-trained encoder).
  * `eval_metrics_fn(features, outputs)` returns {name: (sum, count)}; evaluate() sums both over
    batches and replicas and reports sum / count. Default: the mean of loss_fn's values per batch.
"""

import dataclasses
import os
import time
from typing import Any, Callable, Optional

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from official_bert import checkpoints, optimization, progress
from official_bert.training import distribute, summaries

CHECKPOINT_NAME = "model.ckpt"


@dataclasses.dataclass
class Task:
  """What the loop needs from a job: a model builder, its loss and (optionally) eval metrics."""
  build_model: Callable[[], keras.Model]
  loss_fn: Callable[[dict, Any], tuple]
  eval_metrics_fn: Optional[Callable[[dict, Any], dict]] = None
  name: str = "task"


@dataclasses.dataclass
class RunSettings:
  output_dir: str
  num_train_steps: int
  train_batch_size: int
  steps_per_loop: int = 1000
  save_checkpoints_steps: int = 1000
  keep_checkpoint_max: int = 5
  gradient_accumulation_steps: int = 1
  jit_compile: bool = False
  write_summaries: bool = True
  # Wall time between progress lines (the host loop is cut into calls of about a fifth of it;
  # 0: one call per host loop and a line per loop only).
  progress_interval_secs: float = progress.DEFAULT_INTERVAL_SECS
  save_summary_steps: int = 100  # TensorBoard train scalars every N steps (Estimator's default)
  eval_every_steps: int = 0  # periodic evaluation with train()'s eval_fn (0: none)
  best_metric: Optional[str] = None  # keep the best checkpoint on this eval metric in best/
  run_config: Optional[dict] = None  # the job's flags etc., shown in TensorBoard's Text tab


def default_eval_metrics(task):
  def fn(features, outputs):
    loss, metrics = task.loss_fn(features, outputs)
    one = tf.constant(1.0)
    return {"loss": (loss, one), **{k: (tf.cast(v, tf.float32), one) for k, v in metrics.items()}}
  return fn


def _ensure_built(model, element_spec):
  if model.built and model.variables:
    return
  if hasattr(model, "build"):
    try:
      model.build()
    except TypeError:
      pass
  if not model.variables:  # build by calling on zeros of the input's static shapes
    dummy = tf.nest.map_structure(
        lambda s: tf.zeros([d or 1 for d in s.shape], s.dtype), element_spec)
    model(dummy, training=False)


def _checkpoint_dir(strategy, output_dir):
  # Every MultiWorkerMirrored worker must save (saving is collective); only the chief keeps it.
  if distribute.is_chief(strategy):
    return output_dir
  return os.path.join(output_dir, f".tmp_worker{distribute.worker_id(strategy)}")


def checkpoint_variables(model):
  """({name: variable}, [rng states]) saved for `model` in output_dir checkpoints.

  Names are the Keras paths below the model (GR's names, e.g. "bert/encoder/layer_0/..."):
  tf.train.Checkpoint(model=<Keras 3 model>) misses variables of layers kept in lists, so the
  variables are listed explicitly. Dropout RNG states are saved too (in model order), so a
  resumed run draws the same dropout masks as a straight one.
  """
  named, rng = {}, []
  for v in model.variables:
    if v.path.endswith("seed_generator_state"):
      rng.append(v)
      continue
    name = checkpoints.gr_name(v, model)
    if name in named:
      raise ValueError(f"two variables of {model.name} share the name {name}")
    named[name] = v
  return named, rng


def build_checkpoint(model, optimizer=None):
  """The checkpoint of output_dir: model variables, dropout RNG states (+ optimizer)."""
  named, rng = checkpoint_variables(model)
  kwargs = dict(model=named, rng=rng)
  if optimizer is not None:
    kwargs["optimizer"] = optimizer
  return tf.train.Checkpoint(**kwargs)


def restore_latest(model, output_dir, optimizer=None, checkpoint=None):
  """Restores the newest `model.ckpt-N` of output_dir into model (and optimizer); returns path."""
  latest = tf.train.latest_checkpoint(output_dir)
  if latest:
    checkpoint = checkpoint or build_checkpoint(model, optimizer)
    status = checkpoint.restore(latest)
    if optimizer is None:
      status.expect_partial()
    else:
      status.assert_existing_objects_matched()
    logging.info("Restored %s", latest)
  return latest


def restore_for_inference(task, strategy, output_dir, init_checkpoint=None):
  """The model for eval / predict without training: the newest checkpoint of output_dir (as
  GR's Estimator), else the encoder of `init_checkpoint` with an untrained head."""
  with strategy.scope():
    model = task.build_model()
    if not model.built:
      model.build()
  if restore_latest(model, output_dir):
    return model
  if not init_checkpoint:
    raise ValueError(f"no checkpoint in --output_dir={output_dir} and no --init_checkpoint: "
                     "train first (--do_train) or point --output_dir at a trained run")
  logging.warning("No checkpoint in %s: the %s head is untrained", output_dir, task.name)
  checkpoints.restore_encoder(model, init_checkpoint)
  return model


def _micro_batches(features, k):
  """Splits each [k*b, ...] tensor into k tensors [b, ...] (static dims stay static; a dynamic
  one, e.g. the length of a --dynamic_padding batch, is read at run time)."""
  def split(t):
    dims = [d if d is not None else tf.shape(t)[i + 1] for i, d in enumerate(t.shape[1:])]
    return tf.reshape(t, [k, -1] + dims)
  stacked = tf.nest.map_structure(split, features)
  return [tf.nest.map_structure(lambda t, i=i: t[i], stacked) for i in range(k)]


def _metric_names(task, model, element_spec):
  """The names of loss_fn's metrics, from a trace (not a run) of the forward pass."""
  specs = tf.nest.map_structure(lambda s: tf.TensorSpec(s.shape, s.dtype), element_spec)
  traced = tf.function(lambda f: task.loss_fn(f, model(f, training=False))[1])
  return sorted(traced.get_concrete_function(specs).structured_outputs)


def _make_train_loop(task, strategy, model, optimizer, settings, element_spec):
  """A tf.function running `num_steps` optimizer steps; returns mean loss/metrics."""
  k = int(settings.gradient_accumulation_steps)
  scale = 1.0 / (strategy.num_replicas_in_sync * k)
  lso = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
  tvars = model.trainable_variables

  def loss_and_grads(features):
    with tf.GradientTape() as tape:
      outputs = model(features, training=True)
      loss, metrics = task.loss_fn(features, outputs)
      scaled = tf.cast(loss, tf.float32) * scale
      if lso:
        scaled = optimizer.scale_loss(scaled)
    grads = tape.gradient(scaled, tvars)
    # Dense gradients: XLA- and all-reduce-friendly (the embedding gradient is IndexedSlices).
    grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
    return loss, metrics, grads  # None where the loss does not reach a variable

  if settings.jit_compile:
    loss_and_grads = tf.function(loss_and_grads, jit_compile=True)

  def replica_step(features):
    if k == 1:
      loss, metrics, grads = loss_and_grads(features)
    else:
      loss, metrics, grads = None, None, None
      for micro in _micro_batches(features, k):
        l, m, g = loss_and_grads(micro)
        if grads is None:
          loss, metrics, grads = l, m, g
        else:
          loss = loss + l
          metrics = {n: metrics[n] + m[n] for n in metrics}
          grads = [None if a is None else a + b for a, b in zip(grads, g)]
      loss = loss / k
      metrics = {n: v / k for n, v in metrics.items()}
    # Variables the loss does not reach (e.g. the pooler under a per-token loss) are skipped,
    # as GR's optimizer skips None gradients: no update, no weight decay.
    used = [(g, v) for g, v in zip(grads, tvars) if g is not None]
    grads = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, [g for g, _ in used])
    # The norm GR's optimizer clips (of the mean gradient, before clipping; unscaled).
    norm = tf.linalg.global_norm(grads)
    if lso:
      norm = norm / tf.cast(optimizer.dynamic_scale, norm.dtype)
    optimization.apply_reduced_gradients(optimizer, grads, [v for _, v in used])
    return dict(loss=tf.cast(loss, tf.float32), global_norm=tf.cast(norm, tf.float32),
                **{n: tf.cast(v, tf.float32) for n, v in metrics.items()})

  def one_step(iterator):
    per_replica = strategy.run(replica_step, args=(next(iterator),))
    return tf.nest.map_structure(
        lambda v: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None), per_replica)

  names = ["loss", "global_norm"] + _metric_names(task, model, element_spec)

  @tf.function
  def train_loop(iterator, num_steps):
    # Every step runs in the loop body, so cutting a host loop into several calls (progress
    # lines) or resuming runs the very same graph per step: bit-identical weights.
    sums = {n: tf.constant(0.0) for n in names}
    for _ in tf.range(num_steps):
      out = one_step(iterator)
      sums = {n: sums[n] + out[n] for n in names}
    return {n: v / tf.cast(num_steps, tf.float32) for n, v in sums.items()}

  return train_loop


def _check_batch(settings, strategy):
  denom = strategy.num_replicas_in_sync * settings.gradient_accumulation_steps
  if settings.train_batch_size % denom:
    raise ValueError(
        f"train_batch_size={settings.train_batch_size} is not divisible by replicas "
        f"({strategy.num_replicas_in_sync}) x gradient_accumulation_steps "
        f"({settings.gradient_accumulation_steps})")


class _Chunker:
  """Sizes the tf.function calls inside one host loop so the host regains control about every
  `target_secs` (for progress lines) without paying a call per step. Splitting a loop changes
  no result: the calls share one traced function, iterator, optimizer and RNG state."""

  def __init__(self, target_secs):
    self.target_secs = target_secs
    self.size = 1
    self.secs_per_step = None
    self._calls = 0

  def next(self, remaining):
    if not self.target_secs or self.target_secs <= 0:
      return remaining  # one call per host loop, as GR's iterations_per_loop
    return max(1, min(remaining, self.size))

  def observe(self, steps, secs):
    self._calls += 1
    if self._calls == 1:
      return  # the first call includes tracing: its time says nothing about a step
    self.secs_per_step = secs / steps
    wanted = int(self.target_secs / max(self.secs_per_step, 1e-9))
    self.size = max(1, min(wanted, 4 * self.size))  # grow gradually; shrink at once

  def upcoming_secs(self):
    return (self.secs_per_step or 0.0) * self.size


class _Mean:
  """Step-weighted running mean of the loop's per-call mean metrics."""

  def __init__(self):
    self.sums, self.steps, self.secs = {}, 0, 0.0

  def add(self, means, steps, secs):
    for k, v in means.items():
      self.sums[k] = self.sums.get(k, 0.0) + v * steps
    self.steps += steps
    self.secs += secs

  def pop(self):
    out = {k: v / self.steps for k, v in self.sums.items()} if self.steps else {}
    steps, secs = self.steps, self.secs
    self.sums, self.steps, self.secs = {}, 0, 0.0
    return out, steps, secs


def _next_multiple(step, every):
  return (step // every + 1) * every if every and every > 0 else None


def train(task, strategy, dataset_fn, optimizer_fn, settings, init_fn=None, eval_fn=None):
  """Trains to settings.num_train_steps (resuming from output_dir); returns the model.

  Args:
    task: Task.
    strategy: a tf.distribute.Strategy (training.distribute.get_strategy).
    dataset_fn: tf.distribute.InputContext -> tf.data.Dataset of per-replica batches of
      train_batch_size / num_replicas examples, deterministic and repeating.
    optimizer_fn: () -> Keras optimizer (optimization.create_optimizer), called in scope.
    settings: RunSettings.
    init_fn: model -> None, e.g. restoring a pre-trained encoder; only on a fresh start.
    eval_fn: (model, step) -> {metric name: float}, run every settings.eval_every_steps and at
      the last step (periodic evaluation; see summaries.EvalTracker for what is written).
  """
  _check_batch(settings, strategy)
  chief = distribute.is_chief(strategy)
  tf.io.gfile.makedirs(settings.output_dir)
  with strategy.scope():
    model = task.build_model()
    element_spec = dataset_fn(tf.distribute.InputContext()).element_spec
    _ensure_built(model, element_spec)
    optimizer = optimizer_fn()
    optimizer.build(model.trainable_variables)
    ckpt = build_checkpoint(model, optimizer)
  ckpt_dir = _checkpoint_dir(strategy, settings.output_dir)
  manager = tf.train.CheckpointManager(ckpt, ckpt_dir, max_to_keep=settings.keep_checkpoint_max,
                                       checkpoint_name=CHECKPOINT_NAME)
  if not restore_latest(model, settings.output_dir, optimizer, ckpt) and init_fn is not None:
    init_fn(model)
  step = int(optimizer.iterations.numpy())
  total = settings.num_train_steps
  if step:
    logging.info("Resuming at step %d of %d", step, total)
  if step >= total:
    return model

  # Skipping the batches already consumed restores the input position exactly: a pipeline
  # feeding several replicas has yielded one batch per replica per step.
  dist_ds = strategy.distribute_datasets_from_function(
      lambda ctx: dataset_fn(ctx).skip(step * distribute.replicas_per_pipeline(ctx)))
  iterator = iter(dist_ds)
  train_loop = _make_train_loop(task, strategy, model, optimizer, settings, element_spec)
  writers = summaries.Writers(settings.output_dir, enabled=chief and settings.write_summaries)
  config = {k: v for k, v in dataclasses.asdict(settings).items() if k != "run_config"}
  writers.config_text(dict(config, **(settings.run_config or {})), step)
  tracker = None
  if eval_fn is not None and settings.eval_every_steps:
    tracker = summaries.EvalTracker(settings.output_dir, writers, settings.best_metric,
                                    best_dir=os.path.join(ckpt_dir, "best"), chief=chief,
                                    start_step=step)
  meter = progress.Progress("train", total, "step", settings.train_batch_size,
                            settings.progress_interval_secs, start=step)
  chunker = _Chunker((settings.progress_interval_secs or 0) / 5)
  since_line, since_summary = _Mean(), _Mean()
  every = max(1, settings.save_checkpoints_steps or total)
  inner = optimization.inner_optimizer(optimizer)
  while step < total:
    # One host loop of GR's iterations_per_loop steps, ending at a checkpoint step at the latest.
    loop_end = min(step + settings.steps_per_loop, total, _next_multiple(step, every))
    while step < loop_end:
      stops = [loop_end, _next_multiple(step, settings.save_summary_steps),
               _next_multiple(step, settings.eval_every_steps if tracker else None)]
      n = chunker.next(min(s for s in stops if s is not None) - step)
      start = time.time()
      means = {k: float(v) for k, v in train_loop(iterator, tf.constant(n, tf.int32)).items()}
      secs = time.time() - start
      chunker.observe(n, secs)
      step = int(optimizer.iterations.numpy())
      lr = float(inner.learning_rate)
      since_line.add(means, n, secs)
      since_summary.add(means, n, secs)
      if settings.save_summary_steps and (step % settings.save_summary_steps == 0
                                          or step >= total):
        values, steps, train_secs = since_summary.pop()
        writers.train_scalars(step, dict(values, learning_rate=lr, examples_per_second=(
            steps * settings.train_batch_size / max(train_secs, 1e-9))))
      if meter.due(chunker.upcoming_secs()) or step >= loop_end:
        values, _, _ = since_line.pop()
        ordered = {"loss": values.pop("loss"), **dict(sorted(values.items())), "learning_rate": lr}
        meter.update(step, force=True, warmup=True, **ordered)
      else:
        meter.update(step, warmup=True)
      if step % every == 0 or step >= total:
        path = manager.save(checkpoint_number=step)
        if chief:
          logging.info("Saved %s", path)
      if tracker and (step % settings.eval_every_steps == 0 or step >= total):
        tracker.evaluate(eval_fn, model, step)
  writers.flush()
  if not chief:
    tf.io.gfile.rmtree(ckpt_dir)
  return model


def _batches_total(max_steps, num_batches):
  totals = [n for n in (max_steps, num_batches) if n is not None]
  return min(totals) if totals else None


def evaluate(task, strategy, dataset_fn, model, max_steps=None, num_batches=None,
             progress_interval_secs=progress.DEFAULT_INTERVAL_SECS, batch_size=None):
  """Runs eval_metrics_fn over (at most max_steps batches of) the data; returns {name: float}.

  num_batches (the data's global batches, if the caller knows it) and batch_size only serve the
  progress lines ("eval: batch 12/55 examples/s=... ETA ...").
  """
  metrics_fn = task.eval_metrics_fn or default_eval_metrics(task)
  dist_ds = strategy.distribute_datasets_from_function(dataset_fn)

  @tf.function(reduce_retracing=True)  # --dynamic_padding batches vary in length
  def eval_step(features):
    def replica(f):
      return metrics_fn(f, model(f, training=False))
    per_replica = strategy.run(replica, args=(features,))
    return tf.nest.map_structure(
        lambda v: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None), per_replica)

  meter = progress.Progress("eval", _batches_total(max_steps, num_batches), "batch", batch_size,
                            progress_interval_secs)
  totals, steps = None, 0
  for features in dist_ds:
    if max_steps is not None and steps >= max_steps:
      break
    out = tf.nest.map_structure(lambda t: t.numpy().astype(np.float64), eval_step(features))
    totals = out if totals is None else tf.nest.map_structure(np.add, totals, out)
    steps += 1
    meter.update(steps, warmup=steps == 1)
  if totals is None:
    raise ValueError("evaluation data is empty")
  logging.info("Evaluated %d steps in %s", steps, progress.format_duration(meter.elapsed()))
  return {name: float(num / den) if den else float("nan") for name, (num, den) in totals.items()}


def predict(strategy, dataset_fn, model, predict_fn=None, keep_features=(), num_batches=None,
            progress_interval_secs=progress.DEFAULT_INTERVAL_SECS, batch_size=None, name="predict"):
  """Yields {name: numpy array} per global batch: predict_fn(features, outputs) + kept features.

  num_batches / batch_size / name only serve the progress lines. On MultiWorkerMirrored each
  worker yields its own share; use one_device / mirrored / tpu.
  """
  dist_ds = strategy.distribute_datasets_from_function(dataset_fn)

  def default_fn(features, outputs):
    del features
    return dict(outputs) if isinstance(outputs, dict) else {"outputs": outputs}

  predict_fn = predict_fn or default_fn

  @tf.function(reduce_retracing=True)  # --dynamic_padding batches vary in length
  def predict_step(features):
    def replica(f):
      out = predict_fn(f, model(f, training=False))
      out.update({k: f[k] for k in keep_features})
      return out
    return strategy.run(replica, args=(features,))

  meter = progress.Progress(name, num_batches, "batch", batch_size, progress_interval_secs)
  for features in dist_ds:
    per_replica = predict_step(features)
    yield {k: np.concatenate([t.numpy() for t in strategy.experimental_local_results(v)], 0)
           for k, v in per_replica.items()}
    meter.update(meter.done + 1, warmup=meter.done == 0)
  logging.info("%s: %d batches in %s", name, meter.done, progress.format_duration(meter.elapsed()))
