"""Turns raw corpora into GR's pre-training input: one sentence per line, blank line between docs.

Formats (--input_format):
  wikiextractor  `<doc id=.. title=..>` blocks (WikiExtractor output); the title line is dropped.
  wikitext       WikiText raw: a ` = Title = ` heading starts an article, ` = = .. = = ` sub-headings
                 are dropped, every other non-blank line is a paragraph.
  gutenberg      a Project Gutenberg book: licence header / footer stripped (the `*** START OF` /
                 `*** END OF` markers), hard-wrapped lines joined into paragraphs, one document.
  lines          one paragraph per line, a blank line between documents.
Sentences come from a rule-based splitter (no model, nothing downloaded). Documents with fewer than
--min_sentences sentences or --min_chars characters are dropped.

With --task_name and --data_dir instead of --input_file, the corpus is a GLUE task's train text,
for task-adaptive pre-training (MLM on the task's own sentences before fine-tuning; Gururangan
et al., 2020): the sentences are taken as the task file has them (no splitting, no filters); an
example's sentences stay together, and so do consecutive examples from one source (CoLA).

  bert-prepare-corpus --input_file='wiki/*/wiki_*' --input_format=wikiextractor \
    --output_file=/tmp/wiki_sentences.txt
  bert-prepare-corpus --task_name=CoLA --data_dir=glue_data/CoLA \
    --output_file=/tmp/cola_sentences.txt
"""

from absl import flags
from absl import logging

from official_bert import cli
from official_bert import errors
from official_bert import utils
from official_bert.data import corpus

flags.DEFINE_string("input_file", None, "Raw corpus files: comma-separated files or globs.")
flags.DEFINE_string("task_name", None, "Instead of --input_file: the GLUE task (as "
                    "run_classifier's --task_name) whose train sentences make the corpus.")
flags.DEFINE_string("data_dir", None, "With --task_name: the task's GLUE folder.")
flags.DEFINE_string("output_file", None, "Output text file (GR's pre-training input format).")
flags.DEFINE_enum("input_format", "lines", corpus.FORMATS,
                  "Layout of the raw input (see the docstring).")
flags.DEFINE_integer("min_sentences", 2, "Drop documents with fewer sentences.")
flags.DEFINE_integer("min_chars", 50, "Drop documents with fewer characters.")
FLAGS = flags.FLAGS


def main(_):
  logging.set_verbosity(logging.INFO)
  if not FLAGS.input_file and not FLAGS.task_name:
    raise errors.UserError("no source of text", "--input_file / --task_name",
                           "give either --input_file (a raw corpus) or --task_name and --data_dir "
                           "(a GLUE task's train text)")
  if FLAGS.input_file and FLAGS.task_name:
    raise errors.UserError("two sources of text", "--input_file and --task_name",
                           "give one, not both")
  utils.check_output_file(FLAGS.output_file)
  utils.sweep_partials([FLAGS.output_file])
  if FLAGS.task_name:
    if not FLAGS.data_dir:
      raise errors.UserError("--task_name needs --data_dir", errors.flag("data_dir"),
                             "give the task's GLUE folder")
    corpus.write_documents(corpus.task_documents(FLAGS.task_name, FLAGS.data_dir),
                           FLAGS.output_file)
  else:
    corpus.prepare(utils.expand_globs(FLAGS.input_file, "input_file"), FLAGS.output_file,
                   FLAGS.input_format, FLAGS.min_sentences, FLAGS.min_chars)


def run():
  cli.run(main, ("output_file",))


if __name__ == "__main__":
  run()
