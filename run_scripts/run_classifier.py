"""Entry file with GR's flags; the job lives in official_bert.cli.run_classifier."""

from official_bert.cli import run_classifier

if __name__ == "__main__":
  run_classifier.run()
