"""Presets: Google's architectures by name, GR release folders by path, clear errors."""

import os

import numpy as np
import pytest

from official_bert import checkpoints, configs, encoder, models, presets

TINY = configs.BertConfig(vocab_size=53, hidden_size=20, num_hidden_layers=2,
                          num_attention_heads=4, intermediate_size=27, max_position_embeddings=17,
                          type_vocab_size=2)

# GR's README: the released BERT-Base bert_config.json, and the miniatures' (L, H, A).
GR_BASE_UNCASED = {"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
                   "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
                   "intermediate_size": 3072, "max_position_embeddings": 512,
                   "num_attention_heads": 12, "num_hidden_layers": 12, "type_vocab_size": 2,
                   "vocab_size": 30522}
SHAPES = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (4, 512, 8),
          "medium": (8, 512, 8), "base": (12, 768, 12), "large": (24, 1024, 16)}


def test_registry_is_googles_published_configs():
  assert presets.PRESETS["bert_base_uncased"]["config"] == GR_BASE_UNCASED
  for size, (layers, hidden, heads) in SHAPES.items():
    for case, vocab in (("uncased", 30522), ("cased", 28996)):
      c = presets.resolve(f"bert_{size}_{case}").config
      assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size,
              c.vocab_size) == (layers, hidden, heads, 4 * hidden, vocab), (size, case)
  assert presets.PRESETS["bert_large_cased"]["url"] == (
      "https://storage.googleapis.com/bert_models/2018_10_18/cased_L-24_H-1024_A-16.zip")
  assert presets.PRESETS["bert_mini_uncased"]["url"] == (
      "https://storage.googleapis.com/bert_models/2020_02_20/uncased_L-4_H-256_A-4.zip")


@pytest.mark.parametrize("spelling,key", [
    ("bert-base-uncased", "bert_base_uncased"), ("google-bert/bert-large-cased", "bert_large_cased"),
    ("bert_small_en_uncased", "bert_small_uncased"), ("uncased_L-8_H-512_A-8", "bert_medium_uncased"),
    ("google/bert_uncased_L-2_H-128_A-2", "bert_tiny_uncased"),
    ("sentence-transformers/all-MiniLM-L6-v2", "all_minilm_l6_v2"),
    ("uncased_L-6_H-512_A-8", None), ("roberta-base", None)])
def test_common_spellings(spelling, key):
  assert presets.canonical_name(spelling) == key


def test_config_only_preset_gives_random_init():
  model = models.BertSpanLabeler.from_preset("bert_tiny_uncased")
  assert model.config == presets.resolve("bert_tiny_uncased").config
  table = model.bert.embedding_table.numpy()
  assert table.shape == (30522, 128) and 0.01 < table.std() < 0.03  # GR's truncated normal


def test_name_without_weights_says_what_to_pass(tmp_path):
  model = encoder.BertModel(TINY)
  with pytest.raises(presets.PresetError) as e:
    checkpoints.restore_encoder(model, "bert-base-uncased")
  message = str(e.value)
  assert "uncased_L-12_H-768_A-12.zip" in message and "--init_checkpoint=" in message
  assert "\n" not in message
  with pytest.raises(presets.PresetError, match="no weights of this size"):
    checkpoints.read_weights("bert_tiny_cased")
  with pytest.raises(presets.PresetError, match="bert_base_uncased.*bert_tiny_uncased"):
    models.BertClassifier.from_preset("bert_huge_uncased", num_labels=2)


def _gr_release_folder(root, weights):
  """A GR release folder: bert_config.json, vocab.txt, bert_model.ckpt.* (no `checkpoint` file)."""
  folder = os.path.join(root, "uncased_L-2_H-20_A-4")
  checkpoints.write_tf1(weights, os.path.join(folder, "bert_model.ckpt"))
  TINY.to_json_file(os.path.join(folder, "bert_config.json"))
  with open(os.path.join(folder, "vocab.txt"), "w") as f:
    f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] +
                      [f"w{i}" for i in range(48)]) + "\n")
  return folder


def test_gr_release_folder_by_path(tmp_path):
  source = models.BertPretrainer(TINY)
  source.build()
  rng = np.random.default_rng(1)
  weights = {n: rng.normal(size=v.shape).astype(np.float32)
             for n, v in checkpoints.model_variables(source).items()}
  folder = _gr_release_folder(str(tmp_path), weights)
  found = presets.resolve(folder)
  assert (found.config, found.vocab_file, found.do_lower_case) == (
      TINY, os.path.join(folder, "vocab.txt"), True)
  # restore_encoder(model, DIR)
  clf = models.BertClassifier(TINY, 3)
  checkpoints.restore_encoder(clf, folder)
  got = checkpoints.get_weights(clf)
  for name in weights:
    if name.startswith("bert/"):
      assert np.array_equal(got[name], weights[name]), name
  # from_preset(DIR): the encoder for a fine-tuning model, every head for the pre-trainer.
  pre = models.BertPretrainer.from_preset(folder + "/")
  got = checkpoints.get_weights(pre)
  assert sorted(got) == sorted(weights)
  for name in weights:
    assert np.array_equal(got[name], weights[name]), name


def test_minilm_preset_loads_the_package_weights():
  hf_weights, _ = checkpoints.read_hf(f"pip:{checkpoints.MINILM_PACKAGE}")
  model = encoder.BertModel.from_preset("all_minilm_l6_v2")
  assert model.config.hidden_act == "gelu_exact" and model.config.hidden_size == 384
  got = checkpoints.get_weights(model)
  assert sorted(got) == sorted(hf_weights)
  for name, value in hf_weights.items():
    assert np.array_equal(got[name], value), name
  found = presets.resolve("all-MiniLM-L6-v2")
  assert found.do_lower_case and os.path.exists(found.vocab_file)
  random = encoder.BertModel.from_preset("all_minilm_l6_v2", load_weights=False)
  assert not np.array_equal(random.embedding_table.numpy(), model.embedding_table.numpy())


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _extract_features(*flags):
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  return subprocess.run([sys.executable, "-m", "official_bert.cli.extract_features", *flags],
                        env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True)


def test_init_checkpoint_dir_provides_config_and_vocab(tmp_path):
  """--init_checkpoint=DIR of a GR release folder: no --bert_config_file / --vocab_file."""
  import json  # pylint: disable=import-outside-toplevel
  model = encoder.BertModel(TINY)
  model.build()
  rng = np.random.default_rng(2)
  weights = {n: (0.2 * rng.normal(size=v.shape)).astype(np.float32)
             for n, v in checkpoints.model_variables(model).items()}
  checkpoints.assign_weights(model, weights)
  folder = _gr_release_folder(str(tmp_path), weights)
  (tmp_path / "input.txt").write_text("W1 w2 w3 ||| w4 w5\n")
  result = _extract_features(f"--input_file={tmp_path}/input.txt",
                             f"--output_file={tmp_path}/out.jsonl", f"--init_checkpoint={folder}",
                             "--layers=-1", "--max_seq_length=12")
  assert result.returncode == 0, result.stderr[-3000:]
  row = json.loads((tmp_path / "out.jsonl").read_text())
  tokens = [f["token"] for f in row["features"]]
  assert tokens == ["[CLS]", "w1", "w2", "w3", "[SEP]", "w4", "w5", "[SEP]"]  # lower-cased
  vocab = (tmp_path / "uncased_L-2_H-20_A-4" / "vocab.txt").read_text().split()
  ids = np.array([[vocab.index(t) for t in tokens]], np.int32)
  ours = model({"input_ids": ids, "segment_ids": np.array([[0] * 5 + [1] * 3], np.int32)})
  got = np.array([f["layers"][0]["values"] for f in row["features"]])
  np.testing.assert_allclose(got, ours["sequence_output"].numpy()[0], atol=1e-4)
  # A name without weights, and a folder without a config: one line each, what to pass.
  for init, needle in (("bert-base-uncased", "uncased_L-12_H-768_A-12.zip"),
                       (str(tmp_path), "--bert_config_file is required")):
    result = _extract_features(f"--input_file={tmp_path}/input.txt",
                               f"--output_file={tmp_path}/out2.jsonl", f"--init_checkpoint={init}",
                               f"--vocab_file={folder}/vocab.txt")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert needle in result.stderr
