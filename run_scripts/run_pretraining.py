"""Entry file with GR's flags; the job lives in official_bert.cli.run_pretraining."""

from official_bert.cli import run_pretraining

if __name__ == "__main__":
  run_pretraining.run()
