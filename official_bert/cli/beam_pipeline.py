"""Pre-training TFRecords with Apache Beam: scale mode's records on any Beam runner.

Local, 2 worker processes (DirectRunner):
  bert-beam-pipeline --input_file='corpus/*.txt' --output_file=/tmp/beam/train \
    --vocab_file=vocab.txt --output_shards=4 -- --runner=DirectRunner \
    --direct_running_mode=multi_processing --direct_num_workers=2
Dataflow (workers install the package from a wheel: `pip wheel --no-deps -w dist .`):
  bert-beam-pipeline --input_file='gs://b/corpus/*.txt' --output_file=gs://b/tf/train \
    --vocab_file=gs://b/vocab.txt --output_shards=1024 -- --runner=DataflowRunner \
    --project=P --region=R --temp_location=gs://b/tmp \
    --extra_package=dist/official_bert-0.1.0-py3-none-any.whl --requirements_file=requirements.txt
Flink / Spark: `--runner=FlinkRunner --flink_master=HOST:8081` or `--runner=SparkRunner
--spark_master_url=spark://HOST:7077`, with the same `--extra_package`. Arguments after `--` go
to Beam. See official_bert.data.beam for what the pipeline does.
"""

from absl import flags
from absl import logging

from official_bert import cli
from official_bert import utils
from official_bert.data import pretraining_pipeline as pp

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
flags.DEFINE_bool("chunk_by_file", False,
                  "Cut each file into chunks on its own worker (parallel reading; documents do "
                  "not cross files). Default: scale mode's plan, so the records equal "
                  "create_pretraining_data --output_shards's for the same flags.")
FLAGS = flags.FLAGS


def main(argv):
  logging.set_verbosity(logging.INFO)
  from official_bert.data import beam  # pylint: disable=import-outside-toplevel
  f = FLAGS
  options = pp.make_options(f.vocab_file, f.do_lower_case, f.do_whole_word_mask,
                            f.max_seq_length, f.max_predictions_per_seq, f.random_seed,
                            f.dupe_factor, f.masked_lm_prob, f.short_seq_prob)
  beam.run(utils.expand_globs(f.input_file, "input_file"), f.output_file, options,
           f.output_shards, f.chunk_chars, beam_args=argv[1:], chunk_by_file=f.chunk_by_file)


def run():
  cli.run(main, ("input_file", "output_file", "vocab_file"))


if __name__ == "__main__":
  run()
