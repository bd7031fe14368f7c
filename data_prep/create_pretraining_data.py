"""GR's create_pretraining_data.py command line; the job is official_bert.cli.create_pretraining_data."""

from official_bert.cli import create_pretraining_data

if __name__ == "__main__":
  create_pretraining_data.run()
