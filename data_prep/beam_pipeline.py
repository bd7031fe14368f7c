"""Pre-training data as an Apache Beam pipeline, for corpora larger than one machine.

Same instance logic as scale mode (`official_bert.data.pretraining.ChunkInstanceMaker` via
`pretraining_pipeline.process_chunk`), same chunked rules: each input file is cut into
chunks of ~--chunk_chars characters of whole documents; a chunk is tokenized, expanded dupe_factor
times, and shuffled with an rng seeded by (--random_seed, file index, chunk index), so the set of
records is deterministic whatever the runner and its parallelism (the order inside shards is not:
readers should shuffle). Documents do not continue across files (unlike GR).

Runs on the DirectRunner by default; any other runner by flag, e.g.
  python data_prep/beam_pipeline.py --input_file='gs://b/corpus/*.txt' \
    --output_file=gs://b/tfrecords/train --vocab_file=gs://b/vocab.txt --output_shards=256 \
    -- --runner=DataflowRunner --project=P --region=R --temp_location=gs://b/tmp \
       --requirements_file=requirements.txt
(`--runner=FlinkRunner` / `SparkRunner` work the same way.) Arguments after `--` go to Beam.

apache-beam (2.77.0, with protobuf 6.33.6) is in requirements.txt; it is imported only here.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_prep import pretraining_pipeline as pp  # pylint: disable=wrong-import-position


def _chunks_of_file(indexed_path, chunk_chars):
  """(file_index, path) -> ("file_index-chunk_index", documents) for each chunk of the file."""
  file_index, path = indexed_path
  for chunk_index, chunk in enumerate(pp.iter_chunks([path], chunk_chars)):
    yield f"{file_index}-{chunk_index}", chunk


class _InstancesFn(object):
  """Beam DoFn body: builds the tokenizer once per worker, then chunk -> serialized records."""

  def __init__(self, options):
    self._options = options
    self._tokenizer = self._maker = None

  def setup(self):
    self._tokenizer, self._maker = pp.build_scale(self._options)

  def process(self, keyed_chunk):
    key, chunk = keyed_chunk
    yield from pp.process_chunk(key, chunk, self._tokenizer, self._maker, self._options)


def build_pipeline(pipeline, input_files, output_prefix, options, output_shards=0,
                   chunk_chars=1 << 20):
  """Adds the transforms to `pipeline`; records go to OUTPUT_PREFIX-SSSSS-of-NNNNN."""
  import apache_beam as beam  # pylint: disable=import-outside-toplevel

  class InstancesDoFn(beam.DoFn):
    def __init__(self):
      super().__init__()
      self._fn = _InstancesFn(options)

    def setup(self):
      self._fn.setup()

    def process(self, element):
      yield from self._fn.process(element)

  return (pipeline
          | "Files" >> beam.Create(list(enumerate(input_files)))
          | "Chunks" >> beam.FlatMap(_chunks_of_file, chunk_chars)
          | "Spread" >> beam.Reshuffle()
          | "Instances" >> beam.ParDo(InstancesDoFn())
          | "Write" >> beam.io.WriteToTFRecord(
              output_prefix, coder=beam.coders.BytesCoder(), num_shards=output_shards,
              shard_name_template="-SSSSS-of-NNNNN"))


def run(input_files, output_prefix, options, output_shards=0, chunk_chars=1 << 20,
        beam_args=()):
  """Builds and runs the pipeline (DirectRunner unless beam_args say otherwise)."""
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
    build_pipeline(pipeline, input_files, output_prefix, options, output_shards, chunk_chars)


def _define_flags():
  flags.DEFINE_string("input_file", None, "Input text files: comma-separated files or globs.")
  flags.DEFINE_string("output_file", None, "Output prefix: PREFIX-00000-of-000NN.")
  flags.DEFINE_string("vocab_file", None, "The vocabulary file.")
  flags.DEFINE_bool("do_lower_case", True, "Lower case the input (uncased models).")
  flags.DEFINE_bool("do_whole_word_mask", False, "Whole word masking.")
  flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.")
  flags.DEFINE_integer("max_predictions_per_seq", 20, "Maximum masked LM predictions per sequence.")
  flags.DEFINE_integer("random_seed", 12345, "Random seed.")
  flags.DEFINE_integer("dupe_factor", 10, "Times to duplicate the input (different masks).")
  flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.")
  flags.DEFINE_float("short_seq_prob", 0.1, "Probability of shorter sequences.")
  flags.DEFINE_integer("output_shards", 0, "Output shards (0: the runner decides).")
  flags.DEFINE_integer("chunk_chars", 1 << 20, "Characters of text per chunk (working set).")


def main(argv):
  logging.set_verbosity(logging.INFO)
  from official_bert import utils  # pylint: disable=import-outside-toplevel
  f = flags.FLAGS
  options = pp.make_options(f.vocab_file, f.do_lower_case, f.do_whole_word_mask,
                            f.max_seq_length, f.max_predictions_per_seq, f.random_seed,
                            f.dupe_factor, f.masked_lm_prob, f.short_seq_prob)
  run(utils.expand_globs(f.input_file, "input_file"), f.output_file, options, f.output_shards,
      f.chunk_chars, beam_args=argv[1:])


if __name__ == "__main__":
  _define_flags()
  flags.mark_flag_as_required("input_file")
  flags.mark_flag_as_required("output_file")
  flags.mark_flag_as_required("vocab_file")
  app.run(main)
