"""Pre-training data as Apache Beam transforms, for corpora larger than one machine.

Same instance logic as scale mode (`scale_instances.ChunkInstanceMaker` via
`pretraining_pipeline.process_chunk`). Two chunk plans:
  * default: scale mode's own (`pretraining_pipeline.iter_chunks` over all files in order, tapered,
    chunk keys 0, 1, ...): the records are those of `create_pretraining_data --output_shards`
    for the same inputs, seed and chunk_chars. One worker reads and cuts the text; tokenizing and
    encoding (nearly all the work) spread over all workers.
  * chunk_by_file: each file is cut on its own worker (keys "file-chunk"), for corpora whose
    reading alone is too much for one worker; documents do not cross files (unlike GR).
Either way the set of records is deterministic whatever the runner and its parallelism (the order
inside shards is not: readers should shuffle).

Everything a worker runs lives in the installed `official_bert` package (the DoFn is pickled by
reference to this module), so remote workers need the package: `--extra_package` with a wheel of
this repo, or `--setup_file` (see `bert-beam-pipeline`). apache-beam is imported only here.
"""

import apache_beam as beam

from official_bert.data import pretraining_pipeline as pp


def chunks_of_inputs(input_files, chunk_chars):
  """All files in order -> (chunk index, documents): scale mode's plan and keys."""
  yield from enumerate(pp.iter_chunks(input_files, chunk_chars, taper=True))


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
                   chunk_chars=1 << 20, chunk_by_file=False):
  """Adds the transforms to `pipeline`; records go to OUTPUT_PREFIX-SSSSS-of-NNNNN."""
  pp.check_options(options)
  if chunk_by_file:
    chunks = (pipeline
              | "Files" >> beam.Create(list(enumerate(input_files)))
              | "Chunks" >> beam.FlatMap(chunks_of_file, chunk_chars))
  else:
    chunks = (pipeline
              | "Files" >> beam.Create([list(input_files)])
              | "Chunks" >> beam.FlatMap(chunks_of_inputs, chunk_chars))
  return (chunks
          | "Spread" >> beam.Reshuffle()
          | "Instances" >> beam.ParDo(InstancesDoFn(options))
          | "Write" >> beam.io.WriteToTFRecord(
              output_prefix, coder=beam.coders.BytesCoder(), num_shards=output_shards,
              shard_name_template="-SSSSS-of-NNNNN"))


def run(input_files, output_prefix, options, output_shards=0, chunk_chars=1 << 20,
        beam_args=(), chunk_by_file=False):
  """Builds and runs the pipeline (DirectRunner unless beam_args say otherwise)."""
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
    build_pipeline(pipeline, input_files, output_prefix, options, output_shards, chunk_chars,
                   chunk_by_file)
