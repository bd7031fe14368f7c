"""Entry file with GR's flags; the job lives in official_bert.cli.export_savedmodel."""

from official_bert.cli import export_savedmodel

if __name__ == "__main__":
  export_savedmodel.run()
