"""Small shared helpers: where the data lives, atomic writes, glob expansion."""

import contextlib
import os

# TensorFlow is imported where used: data-prep tools that only need these helpers start
# faster and smaller without it.

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def data_dir():
  """The shared data sets: $OFFICIAL_BERT_DATA, else `../shared/data` beside the repo."""
  return os.environ.get("OFFICIAL_BERT_DATA",
                        os.path.join(os.path.dirname(_REPO_ROOT), "shared", "data"))


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


# Longest field (TSV column, CoNLL line) a reader accepts: the csv module's default limit, which
# GR's TSV reader had. A longer one means a wrong file (or a missing newline), not a sentence.
MAX_FIELD_CHARS = 131072


def read_lines(path, what="file", fix="give a UTF-8 text file"):
  """Yields (line_number, line) of a UTF-8 text file (local or gs://), line numbers from 1.

  Lines keep their "\n". Bytes that are not UTF-8, or a line over MAX_FIELD_CHARS characters,
  raise a UserError naming file:line (GR's readers stop there too, without saying where).
  """
  from official_bert import errors  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
    raise errors.UserError(f"{what} not found", path, fix)
  with tf.io.gfile.GFile(path, "rb") as f:
    for line_number, raw in enumerate(f, start=1):
      try:
        line = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        raise errors.UserError(
            f"bytes that are not UTF-8 ({raw[e.start:e.end]!r} at byte {e.start + 1} of the "
            "line)", errors.at(path, line_number),
            "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
      if len(line) > MAX_FIELD_CHARS:
        raise errors.UserError(
            f"a line of {len(line)} characters (the limit is {MAX_FIELD_CHARS})",
            errors.at(path, line_number),
            f"is this the right {what}? Lines must end with a newline") from None
      yield line_number, line


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
