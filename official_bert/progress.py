"""Wall-time progress lines for long jobs (training, eval, predict, data preparation, export).

A `Progress` logs one absl line at most every `interval_secs` of wall time, whatever the unit of
work costs, e.g.

  train: step 130/233 loss=0.4123 learning_rate=2.1e-05 examples/s=12.3 elapsed 1m05s ETA 52s
  eval: batch 12/55 examples/s=210.4 elapsed 9s ETA 33s

The rate is measured since the previous line; the ETA from the mean rate since the first update
(when the caller marks the first unit as warm-up, e.g. a traced tf.function, from after it).
Jobs made of a few long calls (export, checkpoint conversion) use a `Heartbeat` instead: one line
when each stage starts, then one every `interval_secs` while it runs, from a background thread:

  export_savedmodel: writing SavedModel elapsed 25s (stage 12s)
  convert_checkpoint: checking variables against the model 45/101 elapsed 3s (stage 1s)

TensorFlow-free: data-prep tools import it without TF.
"""

import math
import threading
import time

from absl import logging

DEFAULT_INTERVAL_SECS = 10.0


def format_duration(secs):
  """3725 -> '1h02m05s', 65 -> '1m05s', 9.4 -> '9s'."""
  if secs is None or not math.isfinite(secs):
    return "?"
  secs = int(round(max(secs, 0.0)))
  h, rest = divmod(secs, 3600)
  m, s = divmod(rest, 60)
  if h:
    return f"{h}h{m:02d}m{s:02d}s"
  if m:
    return f"{m}m{s:02d}s"
  return f"{s}s"


def _fmt(value):
  if isinstance(value, float):
    return f"{value:.4g}" if (abs(value) < 1e-3 and value) else f"{value:.4f}"
  return str(value)


class Progress:
  """Counts units of work (steps, batches, examples) and logs a line when one is due.

  Args:
    name: the line's prefix ("train", "eval", ...).
    total: units to do in this job (None: unknown, no percentage or ETA).
    unit: "step", "batch", "example", ...
    examples_per_unit: for the examples/s figure (e.g. the batch size); None: units/s.
    interval_secs: the longest wall time between two lines (<= 0: a line per update).
    start: units already done before this process (a resumed run), not counted in rates.
    log_fn: printf-style logger (absl's logging.info by default).
    clock: time source (tests).
  """

  def __init__(self, name, total=None, unit="step", examples_per_unit=None,
               interval_secs=DEFAULT_INTERVAL_SECS, start=0, log_fn=None, clock=time.monotonic):
    self.name, self.total, self.unit = name, total, unit
    self.examples_per_unit = examples_per_unit
    self.interval_secs = interval_secs
    self._log = log_fn or logging.info
    self._clock = clock
    self._t0 = clock()
    self.done = start
    self._start = start
    self._last_t, self._last_done = self._t0, start
    self._warm_t, self._warm_done = None, None
    self.lines = 0

  def elapsed(self):
    return self._clock() - self._t0

  def due(self, upcoming_secs=0.0):
    """True if a line is due now, or would be overdue after `upcoming_secs` more of work."""
    return self._clock() - self._last_t + upcoming_secs >= self.interval_secs

  def eta_secs(self):
    if self.total is None:
      return None
    now = self._clock()
    if self._warm_t is not None:
      if self.done <= self._warm_done:
        return None  # nothing measured after the warm-up yet
      rate = (self.done - self._warm_done) / max(now - self._warm_t, 1e-9)
    elif self.done > self._start:
      rate = (self.done - self._start) / max(now - self._t0, 1e-9)
    else:
      return None
    return (self.total - self.done) / rate

  def update(self, done, upcoming_secs=0.0, force=False, warmup=False, **values):
    """Sets units done so far; logs if a line is due (or `force`). Returns True if it logged.

    values: extra figures for the line (loss=..., learning_rate=...). warmup: this update ends
    the warm-up (e.g. the first, traced call), so the ETA is measured from here on.
    """
    self.done = done
    if warmup and self._warm_t is None:
      self._warm_t, self._warm_done = self._clock(), done
    if not (force or self.due(upcoming_secs)):
      return False
    self.log(**values)
    return True

  def rate(self):
    """Examples (or units) per second since the previous line."""
    now = self._clock()
    units = (self.done - self._last_done) * (self.examples_per_unit or 1)
    return units / max(now - self._last_t, 1e-9)

  def log(self, **values):
    now = self._clock()
    parts = [f"{self.name}: {self.unit} {self.done}"]
    if self.total:
      parts[0] += f"/{self.total}"
    parts += [f"{k}={_fmt(v)}" for k, v in values.items()]
    plural = self.unit + ("es" if self.unit.endswith(("s", "h")) else "s")
    what = "examples" if self.examples_per_unit else plural
    parts.append(f"{what}/s={self.rate():.1f}")
    parts.append(f"elapsed {format_duration(now - self._t0)}")
    if self.total:
      parts.append(f"ETA {format_duration(self.eta_secs())}")
    self._log("%s", " ".join(parts))
    self._last_t, self._last_done = now, self.done
    self.lines += 1


class Heartbeat:
  """Stage lines for a job whose stages are long single calls (tf.saved_model.save, ...).

  Use as a context manager around the job: `stage(what, total)` starts a stage (and logs it),
  `update(done)` counts its units when it has a known total; a background thread logs the
  current stage with the elapsed time whenever `interval_secs` pass without a line. Leaving the
  block stops and joins the thread (on success after a last "finished" line, on an error
  silently), so no line follows the job's own last one. interval_secs <= 0: stage lines only.
  """

  def __init__(self, name, interval_secs=DEFAULT_INTERVAL_SECS, log_fn=None,
               clock=time.monotonic):
    self.name = name
    self.interval_secs = interval_secs
    self._log = log_fn or logging.info
    self._clock = clock
    self._lock = threading.Lock()
    self._stop = threading.Event()
    self._thread = None
    self._t0 = self._stage_t0 = self._last_t = clock()
    self._stage, self._done, self._total, self._beats = None, 0, None, False
    self.lines = 0

  def __enter__(self):
    if self.interval_secs and self.interval_secs > 0:
      self._thread = threading.Thread(target=self._beat, name=f"{self.name}-heartbeat",
                                      daemon=True)
      self._thread.start()
    return self

  def __exit__(self, exc_type, exc, tb):
    self.stop()
    if exc_type is None:
      with self._lock:
        self._log("%s", f"{self.name}: finished in {format_duration(self._clock() - self._t0)}")
        self.lines += 1
    return False

  def stop(self):
    """Stops the thread (idempotent); returns once it has exited."""
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
      self._thread = None

  def stage(self, what, total=None, beats=True):
    """Starts stage `what` (with `total` units to count, if known) and logs it. beats=False: no
    heartbeat lines during this stage (e.g. a `Progress` reports it)."""
    with self._lock:
      self._stage, self._done, self._total, self._beats = what, 0, total, beats
      self._stage_t0 = self._clock()
      self._line()

  def update(self, done):
    """Units of the current stage done; logs if a line is due (the thread also would)."""
    with self._lock:
      self._done = done
      if (self._beats and self.interval_secs > 0 and
          self._clock() - self._last_t >= self.interval_secs):
        self._line()

  def _line(self):  # with self._lock held
    now = self._clock()
    count = f" {self._done}/{self._total}" if self._total is not None else ""
    self._log("%s", f"{self.name}: {self._stage}{count} elapsed "
              f"{format_duration(now - self._t0)} (stage {format_duration(now - self._stage_t0)})")
    self._last_t = now
    self.lines += 1

  def _beat(self):
    wait = self.interval_secs
    while not self._stop.wait(wait):
      with self._lock:
        if self._stop.is_set():
          return
        idle = self._clock() - self._last_t
        if idle >= self.interval_secs and self._beats:
          self._line()
          idle = 0.0
        wait = max(self.interval_secs - idle, self.interval_secs / 10)
