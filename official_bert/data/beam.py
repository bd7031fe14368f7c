"""Pre-training data as Apache Beam transforms, for corpora larger than one machine.

Same instance logic as scale mode (`scale_instances.ChunkInstanceMaker` via
`pretraining_pipeline.process_chunk`), same chunked rules: each input file is cut into chunks of
~chunk_chars characters of whole documents; a chunk is tokenized, expanded dupe_factor times, and
shuffled with an rng seeded by (random_seed, file index, chunk index), so the set of records is
deterministic whatever the runner and its parallelism (the order inside shards is not: readers
should shuffle). Documents do not continue across files (unlike GR).

Everything a worker runs lives in the installed `official_bert` package (the DoFn is pickled by
reference to this module), so remote workers need the package: `--extra_package` with a wheel of
this repo, or `--setup_file` (see `bert-beam-pipeline`). apache-beam is imported only here.
"""

import apache_beam as beam

from official_bert.data import pretraining_pipeline as pp


def chunks_of_file(indexed_path, chunk_chars):
  """(file_index, path) -> ("file_index-chunk_index", documents) for each chunk of the file."""
  file_index, path = indexed_path
  for chunk_index, chunk in enumerate(pp.iter_chunks([path], chunk_chars)):
    yield f"{file_index}-{chunk_index}", chunk


class InstancesDoFn(beam.DoFn):
  """Builds the tokenizer once per worker, then chunk -> serialized records."""

  def __init__(self, options):
    super().__init__()
    self._options = options
    self._tokenizer = self._maker = None

  def setup(self):
    self._tokenizer, self._maker = pp.build_scale(self._options)

  def process(self, element):
    key, chunk = element
    yield from pp.process_chunk(key, chunk, self._tokenizer, self._maker, self._options)


def build_pipeline(pipeline, input_files, output_prefix, options, output_shards=0,
                   chunk_chars=1 << 20):
  """Adds the transforms to `pipeline`; records go to OUTPUT_PREFIX-SSSSS-of-NNNNN."""
  pp.check_options(options)
  return (pipeline
          | "Files" >> beam.Create(list(enumerate(input_files)))
          | "Chunks" >> beam.FlatMap(chunks_of_file, chunk_chars)
          | "Spread" >> beam.Reshuffle()
          | "Instances" >> beam.ParDo(InstancesDoFn(options))
          | "Write" >> beam.io.WriteToTFRecord(
              output_prefix, coder=beam.coders.BytesCoder(), num_shards=output_shards,
              shard_name_template="-SSSSS-of-NNNNN"))


def run(input_files, output_prefix, options, output_shards=0, chunk_chars=1 << 20,
        beam_args=()):
  """Builds and runs the pipeline (DirectRunner unless beam_args say otherwise)."""
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
    build_pipeline(pipeline, input_files, output_prefix, options, output_shards, chunk_chars)
