"""The Beam pipeline on the DirectRunner: same records as the chunked logic, valid schema."""

import glob
import os

import apache_beam  # pylint: disable=unused-import  (pinned: a missing Beam fails, not skips)
import tensorflow as tf

from official_bert.data import beam as beam_pipeline
from official_bert.data import inspect_records as inspect_tfrecords
from official_bert.data import pretraining_pipeline as pp


def test_direct_runner(data_dir, uncased_vocab, tmp_path):
  sample = os.path.join(data_dir, "sample_text", "sample_text.txt")
  lines = open(os.path.join(data_dir, "wikitext-2", "wiki.valid.raw"), encoding="utf-8").read()
  (tmp_path / "b.txt").write_text(lines[:40000].replace(" . ", " .\n"), encoding="utf-8")
  inputs = [sample, str(tmp_path / "b.txt")]
  options = pp.make_options(uncased_vocab, dupe_factor=2)
  beam_pipeline.run(inputs, str(tmp_path / "out"), options, output_shards=3, chunk_chars=5000,
                    beam_args=["--runner=DirectRunner"])
  shards = sorted(glob.glob(str(tmp_path / "out-*-of-00003")))
  assert len(shards) == 3
  got = sorted(r for s in shards for r in tf.data.TFRecordDataset(s).as_numpy_iterator())
  # Reference: the same chunks through the shared logic, without Beam.
  tokenizer, maker = pp.build_scale(options)
  want = []
  for file_index, path in enumerate(inputs):
    for chunk_index, chunk in enumerate(pp.iter_chunks([path], 5000)):
      want.extend(pp.process_chunk(f"{file_index}-{chunk_index}", chunk, tokenizer, maker,
                                   options))
  assert len(want) > 50 and got == sorted(want)
  for s in shards:
    inspect_tfrecords.inspect(s, 128, 20)
