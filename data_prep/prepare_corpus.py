"""The corpus preparation command line; the job is official_bert.cli.prepare_corpus."""

from official_bert.cli import prepare_corpus

if __name__ == "__main__":
  prepare_corpus.run()
