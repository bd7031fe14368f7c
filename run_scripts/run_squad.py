"""Entry file with GR's flags; the job lives in official_bert.cli.run_squad."""

from official_bert.cli import run_squad

if __name__ == "__main__":
  run_squad.run()
