"""Entry points: one module per job (GR's flags, then `main`), run through `run()`.

Each job module defines its absl flags at import, as GR's scripts do, so import one job module per
process. `run_scripts/` and `data_prep/` hold thin files that call these; `pyproject.toml` installs
them as console scripts (`bert-run-classifier`, ...). The library outside `cli/` reads no flags.
"""

from absl import app
from absl import flags


def run(main, required_flags=()):
  """Marks `required_flags` as required and runs `main` under absl."""
  for name in required_flags:
    flags.mark_flag_as_required(name)
  app.run(main)
