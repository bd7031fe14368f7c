"""The SQuAD split command line; the job is official_bert.cli.split_squad."""

from official_bert.cli import split_squad

if __name__ == "__main__":
  split_squad.run()
