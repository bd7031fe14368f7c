"""Entry file with GR's flags; the job lives in official_bert.cli.extract_features."""

from official_bert.cli import extract_features

if __name__ == "__main__":
  extract_features.run()
