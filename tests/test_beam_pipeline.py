"""The Beam pipeline on the DirectRunner: same records as the chunked logic, valid schema."""

import glob
import os
import shlex
import subprocess
import sys

import apache_beam  # pylint: disable=unused-import  (pinned: a missing Beam fails, not skips)
import tensorflow as tf

from official_bert.data import beam as beam_pipeline
from official_bert.data import inspect_records as inspect_tfrecords
from official_bert.data import pretraining_pipeline as pp


def test_direct_runner_chunk_by_file(data_dir, uncased_vocab, tmp_path):
  sample = os.path.join(data_dir, "sample_text", "sample_text.txt")
  lines = open(os.path.join(data_dir, "wikitext-2", "wiki.valid.raw"), encoding="utf-8").read()
  (tmp_path / "b.txt").write_text(lines[:40000].replace(" . ", " .\n"), encoding="utf-8")
  inputs = [sample, str(tmp_path / "b.txt")]
  options = pp.make_options(uncased_vocab, dupe_factor=2)
  beam_pipeline.run(inputs, str(tmp_path / "out"), options, output_shards=3, chunk_chars=5000,
                    beam_args=["--runner=DirectRunner"], chunk_by_file=True)
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


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _documented_local_command():
  """WORKSPACE.md's local Beam command (2 worker processes), continuation lines joined."""
  text = open(os.path.join(ROOT, "WORKSPACE.md"), encoding="utf-8").read()
  block = text[text.index("### 4. Apache Beam"):]
  block = block[block.index("```") + 3:]
  block = block[:block.index("```")].replace("\\\n", " ")
  return next(line.strip() for line in block.splitlines() if "beam_pipeline.py" in line)


def test_documented_multiprocess_command_matches_scale_mode(data_dir, uncased_vocab, tmp_path):
  # Worker processes import official_bert themselves (nothing from the test's sys.path), and the
  # records equal scale mode's for the same flags.
  corpus = tmp_path / "corpus"
  corpus.mkdir()
  lines = open(os.path.join(data_dir, "wikitext-2", "wiki.valid.raw"), encoding="utf-8").read()
  (corpus / "a.txt").write_text(lines[:60000].replace(" . ", " .\n"), encoding="utf-8")
  (corpus / "b.txt").write_text(
      open(os.path.join(data_dir, "sample_text", "sample_text.txt"), encoding="utf-8").read(),
      encoding="utf-8")
  words = shlex.split(_documented_local_command())
  assert words[:2] == ["python", "data_prep/beam_pipeline.py"]
  assert "--direct_running_mode=multi_processing" in words
  assert "--direct_num_workers=2" in words
  args = [w.replace("vocab.txt", uncased_vocab) if w.startswith("--vocab_file=") else w
          for w in words[2:]]
  env = dict(os.environ, PYTHONPATH=ROOT)
  proc = subprocess.run([sys.executable, os.path.join(ROOT, words[1]), *args, ], cwd=tmp_path,
                        capture_output=True, text=True, check=False, env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = next(w.split("=", 1)[1] for w in args if w.startswith("--output_file="))
  got = sorted(r for s in glob.glob(os.path.join(tmp_path, out) + "-*")
               for r in tf.data.TFRecordDataset(s).as_numpy_iterator())
  # Scale mode with the same flags (Beam-only ones dropped).
  before_dashes = args[:args.index("--")]
  scale = [a for a in before_dashes if not a.startswith("--output_file=")]
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "data_prep", "create_pretraining_data.py"),
                         *scale, f"--output_file={tmp_path / 'scale'}", "--num_workers=2"],
                        cwd=tmp_path, capture_output=True, text=True, check=False, env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  want = sorted(r for s in glob.glob(str(tmp_path / "scale-*"))
                for r in tf.data.TFRecordDataset(s).as_numpy_iterator())
  assert len(want) > 100 and got == want
