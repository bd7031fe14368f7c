"""User errors: what is wrong, where (a file:line or a --flag), and what to do about it.

The entry points print a UserError as one line, `error: <what> (<where>): <what to do>`, with no
traceback (official_bert.cli). Anything else is a bug and keeps its traceback.

UserError is a ValueError, so callers that catch ValueError keep working. Import-light on
purpose: data-prep tools and flag checks use it before TensorFlow is imported.
"""

import os
import sys


class UserError(ValueError):
  """An error the user can fix: a bad flag value, a missing or ill-formed input, a mismatch
  between a config and a checkpoint, an output that cannot be written."""

  def __init__(self, what, where=None, fix=None):
    self.what, self.where, self.fix = what, where, fix
    super().__init__(format_message(what, where, fix))


def format_message(what, where=None, fix=None):
  """'what (where): fix', leaving out the parts not given."""
  text = str(what)
  if where:
    text += f" ({where})"
  if fix:
    text += f": {fix}"
  return text


def at(path, line=None):
  """'path:line' (or just 'path'), the `where` of an error in a file."""
  return f"{path}:{line}" if line is not None else str(path)


def flag(name, value=None):
  """'--name=value' (or '--name'), the `where` of an error in a flag."""
  return f"--{name}" if value is None else f"--{name}={value}"


# ------------------------------------------------------------------------------------------------
# The entry points' side: one line for a user error, the traceback for anything else.

DEBUG_ENV = "OFFICIAL_BERT_DEBUG"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# Our code: the package, and in a source checkout the entry files beside it.
_OUR_DIRS = tuple(os.path.join(os.path.dirname(_PACKAGE_DIR), d) + os.sep
                  for d in ("data_prep", "run_scripts")) + (_PACKAGE_DIR + os.sep,)


def _raised_by_our_code(exc):
  """True if the innermost frame of `exc`'s traceback is official_bert's own code: a deliberate
  `raise` with a message for the user, not an error deep inside TensorFlow or Keras."""
  tb = exc.__traceback__
  if tb is None:
    return False
  while tb.tb_next is not None:
    tb = tb.tb_next
  return tb.tb_frame.f_code.co_filename.startswith(_OUR_DIRS)


def _first_line(text):
  return " ".join(str(text).strip().split("\n")[0].split())


def as_user_error(exc):
  """The UserError `exc` stands for, or None if it is a bug (or unknown) and needs a traceback.

  User errors: UserError; absl's UsageError; a missing / unreadable file (OSError with a file
  name, TensorFlow's NotFoundError / PermissionDeniedError); a pipeline error that
  training.inputs can pin on a file; and a plain ValueError / FileNotFoundError raised by
  official_bert's own code (those messages are written for the user).
  """
  if isinstance(exc, UserError):
    return exc
  if type(exc).__name__ == "UsageError" and type(exc).__module__.startswith("absl"):
    return UserError(_first_line(exc))
  if isinstance(exc, OSError) and getattr(exc, "filename", None):
    return UserError(exc.strerror or _first_line(exc), exc.filename,
                     "check the path and its permissions")
  tf = sys.modules.get("tensorflow")
  if tf is not None and isinstance(exc, tf.errors.OpError):
    from official_bert.training import inputs  # pylint: disable=import-outside-toplevel
    found = inputs.user_error_from(exc)
    if found is not None:
      return found
    if isinstance(exc, (tf.errors.NotFoundError, tf.errors.PermissionDeniedError)):
      return UserError(_first_line(exc.message), None, "check the path and its permissions")
    return None
  if type(exc) in (ValueError, FileNotFoundError) and _raised_by_our_code(exc):
    return UserError(_first_line(exc))
  return None


def debug_requested(verbosity=0):
  """Tracebacks for user errors too: --verbosity>=1 or $OFFICIAL_BERT_DEBUG set (not 0)."""
  return verbosity >= 1 or os.environ.get(DEBUG_ENV, "0") not in ("", "0")


def report(exc, stream=None):
  """Prints `error: <message>` (one line) for a user error and returns True; False otherwise."""
  user = as_user_error(exc)
  if user is None:
    return False
  print(f"error: {_first_line(user)}", file=stream or sys.stderr, flush=True)
  return True


def run_main(main, argv, verbosity=0):
  """Calls main(argv); a user error becomes one line on stderr and exit status 1, with no
  traceback (unless debug_requested). Anything else propagates with its traceback."""
  from official_bert import utils  # pylint: disable=import-outside-toplevel
  utils.cleanup_on_sigterm()
  try:
    return main(argv)
  except KeyboardInterrupt:
    if debug_requested(verbosity):
      raise
    print("error: interrupted (Ctrl-C); temporary outputs were removed, a rerun resumes from the "
          "last checkpoint", file=sys.stderr, flush=True)
    sys.exit(130)
  except Exception as e:  # pylint: disable=broad-except
    if debug_requested(verbosity) or not report(e):
      raise
    sys.exit(1)
