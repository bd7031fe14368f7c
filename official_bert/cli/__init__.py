"""Entry points: one module per job (GR's flags, then `main`), run through `run()`.

Each job module defines its absl flags at import, as GR's scripts do, so import one job module per
process. `run_scripts/` and `data_prep/` hold thin files that call these; `pyproject.toml` installs
them as console scripts (`bert-run-classifier`, ...). The library outside `cli/` reads no flags.
"""

import sys

from absl import app
from absl import flags
from absl import logging

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
    sys.exit(f"--init_checkpoint: {e}")
  for name in _FROM_CHECKPOINT:
    if name in values and values[name].value is None and found[name]:
      values[name].value = found[name]
      logging.info("--%s=%s (from --init_checkpoint)", name, found[name])
  if ("do_lower_case" in values and not values["do_lower_case"].present
      and found["do_lower_case"] is not None):
    values["do_lower_case"].value = found["do_lower_case"]
    logging.info("--do_lower_case=%s (from --init_checkpoint)", found["do_lower_case"])


def run(main, required_flags=()):
  """Marks `required_flags` as required and runs `main` under absl. A required
  --bert_config_file / --vocab_file may come from --init_checkpoint=DIR instead."""
  values = flags.FLAGS
  deferred = [n for n in required_flags if n in _FROM_CHECKPOINT and "init_checkpoint" in values]
  for name in required_flags:
    if name not in deferred:
      flags.mark_flag_as_required(name)

  def main_with_checkpoint_files(argv):
    _fill_from_init_checkpoint()
    for name in deferred:
      if values[name].value is None:
        sys.exit(f"--{name} is required (or --init_checkpoint=DIR of a folder holding it, "
                 "e.g. GR's uncased_L-12_H-768_A-12/)")
    return main(argv)

  app.run(main_with_checkpoint_files)
