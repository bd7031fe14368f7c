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
from absl import logging

from official_bert import errors

# Flags that --init_checkpoint=DIR provides when not given (a GR release folder holds
# bert_config.json and vocab.txt beside bert_model.ckpt).
_FROM_CHECKPOINT = ("bert_config_file", "vocab_file")


def _fill_from_init_checkpoint():
  """Sets --bert_config_file / --vocab_file (when not given) and --do_lower_case (when not
  given and the folder says) from --init_checkpoint's folder or preset."""
  values = flags.FLAGS
  if "init_checkpoint" not in values or not values.init_checkpoint:
    return
  from official_bert import presets  # pylint: disable=import-outside-toplevel
  try:
    found = presets.checkpoint_files(values.init_checkpoint)
  except presets.PresetError as e:
    raise errors.UserError(str(e), errors.flag("init_checkpoint", values.init_checkpoint),
                           "give a checkpoint, a folder holding one, or a preset name") from None
  for name in _FROM_CHECKPOINT:
    if name in values and values[name].value is None and found[name]:
      values[name].value = found[name]
      logging.info("--%s=%s (from --init_checkpoint)", name, found[name])
  if ("do_lower_case" in values and not values["do_lower_case"].present
      and found["do_lower_case"] is not None):
    values["do_lower_case"].value = found["do_lower_case"]
    logging.info("--do_lower_case=%s (from --init_checkpoint)", found["do_lower_case"])


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
  absl with the error convention. A required --bert_config_file / --vocab_file may come from
  --init_checkpoint=DIR instead. `job` names the job for the checks (default: main's module)."""
  from official_bert.cli import checks  # pylint: disable=import-outside-toplevel
  values = flags.FLAGS
  deferred = [n for n in required_flags if n in _FROM_CHECKPOINT and "init_checkpoint" in values]
  for name in required_flags:
    if name not in deferred:
      flags.mark_flag_as_required(name)
  if job is None:
    module = main.__module__
    if module == "__main__":
      module = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    job = module.rsplit(".", 1)[-1]

  def checked_main(argv):
    _fill_from_init_checkpoint()
    for name in deferred:
      if values[name].value is None:
        raise errors.UserError(f"--{name} is required", None,
                               f"pass --{name}, or --init_checkpoint=DIR of a folder holding it "
                               "(e.g. GR's uncased_L-12_H-768_A-12/)")
    checks.validate(values, job)
    return main(argv)

  app.run(lambda argv: errors.run_main(checked_main, argv, values.verbosity),
          flags_parser=_parse_flags)
