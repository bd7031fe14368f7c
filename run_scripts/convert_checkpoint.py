"""Entry file with GR's flags; the job lives in official_bert.cli.convert_checkpoint."""

from official_bert.cli import convert_checkpoint

if __name__ == "__main__":
  convert_checkpoint.run()
