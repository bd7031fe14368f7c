"""Entry file with GR's flags; the job lives in official_bert.cli.run_ner."""

from official_bert.cli import run_ner

if __name__ == "__main__":
  run_ner.run()
