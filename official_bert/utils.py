"""Small shared helpers: atomic writes, glob expansion."""

import contextlib
import glob
import os
import posixpath

from absl import logging

from official_bert import errors

# TensorFlow is imported where used: data-prep tools that only need these helpers start
# faster and smaller without it.


def expand_globs(patterns, flag_name="input_file"):
  """Comma-separated globs (local or gs://) -> sorted file list; a pattern matching nothing is an error."""
  if isinstance(patterns, str):
    patterns = [p for p in patterns.split(",") if p.strip()]
  if not patterns:
    raise ValueError(f"--{flag_name} is empty: give one or more files or globs")
  files = []
  for pattern in patterns:
    pattern = pattern.strip()
    if "://" in pattern:
      import tensorflow as tf  # pylint: disable=import-outside-toplevel
      matched = sorted(tf.io.gfile.glob(pattern))
    else:
      matched = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
    if not matched:
      raise FileNotFoundError(
          f"--{flag_name}: the pattern {pattern!r} matches no file; check the path")
    files.extend(matched)
  return files


def check_output_file(path, flag_name="output_file"):
  """A local output path that cannot be written (a directory, or its folder missing) fails
  before any work."""
  if "://" in path:
    return
  if os.path.isdir(path):
    raise errors.UserError("the output path is a directory", path,
                           f"give a file name (or prefix) in --{flag_name}")
  parent = os.path.dirname(path) or "."
  if not os.path.isdir(parent):
    raise errors.UserError("the output folder does not exist", parent,
                           f"create it first or fix --{flag_name}")


def partial_path(path, pid=None):
  """The temporary name of `path` while it is written: hidden (`.NAME.partial-PID`), so no glob
  of the finished files (`train-*`, `*.tfrecord`) matches it."""
  head, name = posixpath.split(path) if "://" in path else os.path.split(path)
  return (posixpath.join if "://" in path else os.path.join)(
      head, f".{name}.partial-{os.getpid() if pid is None else pid}")


def pid_alive(pid):
  """Whether process `pid` exists on this machine."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass
  return True


def sweep_partials(paths):
  """Removes the temporary files of `paths` (local ones) that a killed run left (its process is
  gone), with a log line each. Returns the removed paths."""
  by_dir = {}
  for path in paths:
    if "://" not in path:
      head, name = os.path.split(path)
      by_dir.setdefault(head, set()).add(name)
  removed = []
  for head, names in by_dir.items():
    for entry in os.listdir(head or "."):
      name, sep, pid = entry[1:].rpartition(".partial-")
      if not (entry.startswith(".") and sep and name in names and pid.isdigit()) or \
          pid_alive(int(pid)):
        continue
      stale = os.path.join(head, entry)
      try:
        os.remove(stale)
      except FileNotFoundError:  # another run swept it first
        continue
      logging.warning("Removed %s, a partial output left by an interrupted run", stale)
      removed.append(stale)
  return removed


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary name beside `path` (`partial_path`); renames it to `path` only if the
  block succeeds, removes it otherwise."""
  tmp = partial_path(path)
  if "://" not in path:
    try:
      yield tmp
    except BaseException:
      if os.path.lexists(tmp):
        os.remove(tmp)
      raise
    os.replace(tmp, path)
    return
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  try:
    yield tmp
  except BaseException:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.remove(tmp)
    raise
  tf.io.gfile.rename(tmp, path, overwrite=True)


def open_for_write(path, mode="wb"):
  """open() for local paths (large writes are several times faster than through tf.io.gfile),
  tf.io.gfile.GFile for the rest (gs://, hdfs://, ...)."""
  if "://" not in path:
    return open(path, mode, encoding=None if "b" in mode else "utf-8")  # pylint: disable=consider-using-with
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.gfile.GFile(path, mode)


@contextlib.contextmanager
def atomic_open(path, mode="w"):
  """Like open() (tf.io.gfile for gs:// and other schemes), but the file appears under `path`
  only when complete."""
  with atomic_path(path) as tmp:
    with open_for_write(tmp, mode) as f:
      yield f
