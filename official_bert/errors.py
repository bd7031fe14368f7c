"""User errors: what is wrong, where (a file:line or a --flag), and what to do about it.

The entry points print a UserError as one line, `error: <what> (<where>): <what to do>`, with no
traceback (official_bert.cli). Anything else is a bug and keeps its traceback.

UserError is a ValueError, so callers that catch ValueError keep working. Import-light on
purpose: data-prep tools and flag checks use it before TensorFlow is imported.
"""


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
