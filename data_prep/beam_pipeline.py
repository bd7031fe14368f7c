"""The Beam pipeline command line; the job is official_bert.cli.beam_pipeline."""

from official_bert.cli import beam_pipeline

if __name__ == "__main__":
  beam_pipeline.run()
