"""Small shared helpers: atomic writes, glob expansion, line reading with file:line errors."""

import contextlib
import glob
import os
import posixpath
import shutil
import signal
import threading

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
  except (ProcessLookupError, OverflowError):  # gone, or not a process id at all
    return False
  except PermissionError:
    pass
  return True


def is_partial(path):
  """True for a name made by partial_path."""
  name = os.path.basename(path)
  return name.startswith(".") and ".partial-" in name



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
      pid = pid.split("-")[0]  # atomic_dir's old folder: PID-old
      if not (entry.startswith(".") and sep and name in names and pid.isdigit()) or \
          pid_alive(int(pid)):
        continue
      stale = os.path.join(head, entry)
      try:
        if os.path.isdir(stale) and not os.path.islink(stale):
          shutil.rmtree(stale)  # a folder output (atomic_dir)
        else:
          os.remove(stale)
      except FileNotFoundError:  # another run swept it first
        continue
      logging.warning("Removed %s, a partial output left by an interrupted run", stale)
      removed.append(stale)
  return removed


class Terminated(SystemExit):
  """Raised in the main thread on SIGTERM, so that `finally` / `except` blocks clean up."""


_HANDLER_PID = set()  # the processes that installed the handler


def _raise_terminated(signum, frame):
  del frame
  if os.getpid() not in _HANDLER_PID:
    # A forked child (a multiprocessing worker) inherited the handler: die as by default, since
    # a pool terminating its workers must not wait for them to unwind.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return
  raise Terminated(128 + signum)


def cleanup_on_sigterm():
  """Makes SIGTERM raise Terminated (exit status 143) in this process instead of killing it
  outright, so temporary outputs are removed. Only from the main thread, and only if no one else
  handles SIGTERM; forked children keep the default behaviour."""
  if threading.current_thread() is not threading.main_thread():
    return
  if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None, _raise_terminated):
    _HANDLER_PID.add(os.getpid())
    signal.signal(signal.SIGTERM, _raise_terminated)


def _remove(path):
  if "://" not in path:
    if os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
      os.remove(path)
    return
  if _gfile().isdir(path):
    _gfile().rmtree(path)
  elif _gfile().exists(path):
    _gfile().remove(path)


def check_output_path(path, flag_name=None, folder_must_exist=False):
  """Fails early (before any work) if `path` cannot be a file output: an existing folder (or,
  with folder_must_exist, a path in a folder that does not exist)."""
  where = errors.flag(flag_name, path) if flag_name else path
  if os.path.isdir(path) if "://" not in path else _gfile().isdir(path):
    raise errors.UserError("the output path is a directory", where,
                           "give a file name (e.g. inside that folder)")
  head = os.path.dirname(path)
  if folder_must_exist and head and "://" not in head and not os.path.isdir(head):
    raise errors.UserError(f"the output's folder {head} does not exist", where,
                           "create it first or give another path")


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary name beside `path` (`partial_path`); renames it to `path` only if the
  block succeeds, removes it otherwise (also on Ctrl-C and, see cleanup_on_sigterm, SIGTERM).

  `path` must not be an existing folder (checked before the block runs); partial versions of it
  left by killed runs are removed first (sweep_partials). A block that writes nothing is an
  error naming `path` (an empty input), not an empty output.
  """
  check_output_path(path)
  sweep_partials([path])
  cleanup_on_sigterm()
  tmp = partial_path(path)
  local = "://" not in path
  try:
    yield tmp
  except BaseException:
    _remove(tmp)
    raise
  if not (os.path.lexists(tmp) if local else _gfile().exists(tmp)):
    raise errors.UserError("nothing to write", path,
                           "the input holds no usable text or examples; check the input files")
  if local:
    os.replace(tmp, path)
  else:
    _gfile().rename(tmp, path, overwrite=True)


def _gfile():
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.gfile


@contextlib.contextmanager
def atomic_dir(path):
  """Like atomic_path for a folder output (e.g. a SavedModel): the block writes a temporary folder
  beside `path`; only when it succeeds does it replace `path` (the old folder is moved aside,
  the new one renamed in, the old one removed). A failed block leaves an existing `path` as it was.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  sweep_partials([path])
  cleanup_on_sigterm()
  tmp = partial_path(path)
  try:
    yield tmp
  except BaseException:
    _remove(tmp)
    raise
  if not tf.io.gfile.exists(path):
    tf.io.gfile.rename(tmp, path)
    return
  old = partial_path(path, f"{os.getpid()}-old")
  tf.io.gfile.rename(path, old)
  try:
    tf.io.gfile.rename(tmp, path)
  except BaseException:
    tf.io.gfile.rename(old, path)
    raise
  _remove(old)


def check_same_json(path, new, what="config", fix=None):
  """Raises a UserError if `path` exists and holds a JSON object other than `new` (a dict),
  naming the differing keys with both values; True if it holds `new`, False if it is absent.

  For an output folder's bert_config.json: a run into a folder that holds another model's
  config (and checkpoints) must refuse before touching anything, never overwrite the config.
  """
  import json  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  if not tf.io.gfile.exists(path):
    return False
  with tf.io.gfile.GFile(path, "r") as f:
    try:
      old = json.load(f)
    except json.JSONDecodeError:
      old = None
  if not isinstance(old, dict):
    raise errors.UserError(f"the existing {what} is not a JSON object", path,
                           fix or "remove it or choose another output folder")
  keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
  if not keys:
    return True
  diff = ", ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys[:6])
  more = f" and {len(keys) - 6} more" if len(keys) > 6 else ""
  raise errors.UserError(
      f"the output folder holds a run with another {what} ({diff}{more})", path,
      fix or "choose a new --output_dir (or remove the old run) instead of mixing two models")


# Longest field (TSV column, CoNLL line) a reader accepts: the csv module's default limit, which
# GR's TSV reader had. A longer one means a wrong file (or a missing newline), not a sentence.
MAX_FIELD_CHARS = 131072


def read_lines(path, what="file", fix="give a UTF-8 text file"):
  """Yields (line_number, line) of a UTF-8 text file (local or gs://), line numbers from 1.

  Lines keep their "\n". Bytes that are not UTF-8, or a line over MAX_FIELD_CHARS characters,
  raise a UserError naming file:line (GR's readers stop there too, without saying where).
  """
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
