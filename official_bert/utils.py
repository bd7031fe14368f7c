"""Small shared helpers: atomic writes, glob expansion."""

import contextlib
import os

# TensorFlow is imported where used: data-prep tools that only need these helpers start
# faster and smaller without it.


def expand_globs(patterns, flag_name="input_file"):
  """Comma-separated globs (local or gs://) -> sorted file list; a pattern matching nothing is an error."""
  if isinstance(patterns, str):
    patterns = [p for p in patterns.split(",") if p.strip()]
  if not patterns:
    raise ValueError(f"--{flag_name} is empty: give one or more files or globs")
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  files = []
  for pattern in patterns:
    matched = sorted(tf.io.gfile.glob(pattern.strip()))
    if not matched:
      raise FileNotFoundError(
          f"--{flag_name}: the pattern {pattern!r} matches no file; check the path")
    files.extend(matched)
  return files


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary name beside `path`; renames it to `path` only if the block succeeds."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tmp = f"{path}.tmp-{os.getpid()}"
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
    return open(path, mode)  # pylint: disable=consider-using-with,unspecified-encoding
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.gfile.GFile(path, mode)


@contextlib.contextmanager
def atomic_open(path, mode="w"):
  """Like open(), via tf.io.gfile, but the file appears under `path` only when complete."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  with atomic_path(path) as tmp:
    with tf.io.gfile.GFile(tmp, mode) as f:
      yield f
