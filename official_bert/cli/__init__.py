"""Entry points: one module per job (GR's flags, then `main`), run through `run()`.

Each job module defines its absl flags at import, as GR's scripts do, so import one job module per
process. `run_scripts/` and `data_prep/` hold thin files that call these; `pyproject.toml` installs
them as console scripts (`bert-run-classifier`, ...). The library outside `cli/` reads no flags.

One error convention for all (official_bert.errors): a user error -- a bad flag value (checked
by cli.checks before main), a missing or ill-formed input, a config / checkpoint mismatch -- is
one line `error: <what> (<file>:<line> or --flag): <what to do>` on stderr and exit status 1, with
no traceback; `--verbosity=1` or OFFICIAL_BERT_DEBUG=1 shows the traceback. Other errors keep
their traceback. SIGTERM removes temporary outputs like Ctrl-C does.
"""

import os
import sys

from absl import app
from absl import flags

from official_bert import errors


def _parse_flags(argv):
  """absl's parsing, with a bad or missing flag as one `error:` line (absl prints two and a
  usage hint)."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    errors.report(errors.UserError(" ".join(str(e).split()).rstrip("."), None,
                                   f"see {os.path.basename(argv[0])} --helpshort"))
    sys.exit(1)


def run(main, required_flags=(), job=None):
  """Marks `required_flags` as required, checks the flags (cli.checks) and runs `main` under
  absl with the error convention. `job` names the job for the checks (default: main's module)."""
  from official_bert.cli import checks  # pylint: disable=import-outside-toplevel
  for name in required_flags:
    flags.mark_flag_as_required(name)
  if job is None:
    module = main.__module__
    if module == "__main__":
      module = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    job = module.rsplit(".", 1)[-1]

  def checked_main(argv):
    checks.validate(flags.FLAGS, job)
    return main(argv)

  app.run(lambda argv: errors.run_main(checked_main, argv, flags.FLAGS.verbosity),
          flags_parser=_parse_flags)
