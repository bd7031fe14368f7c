"""Our model against GR's own modeling.py / run_pretraining.py (PyPI bert-tensorflow)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from official_bert import checkpoints, configs, encoder, models
from official_bert.layers import activations
from official_bert.tasks import pretraining
import gr_reference

# Odd tiny sizes so a transposed or mis-split dimension shows.
TINY = dict(vocab_size=97, hidden_size=30, num_hidden_layers=2, num_attention_heads=3,
            intermediate_size=41, hidden_act="gelu", hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1, max_position_embeddings=23, type_vocab_size=3,
            initializer_range=0.02)
B, S, P = 3, 11, 4

# Runs in a subprocess under the tensorflow.compat.v1 shim: builds GR's BertModel and GR's
# pre-training heads, saves the random checkpoint and the outputs.
_GR_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
from bert import modeling, run_pretraining
tf.disable_eager_execution()
work = sys.argv[1]
inputs = dict(np.load(work + "/inputs.npz"))
config = modeling.BertConfig.from_json_file(work + "/bert_config.json")
ph = {k: tf.constant(v) for k, v in inputs.items()}
model = modeling.BertModel(config=config, is_training=False, input_ids=ph["input_ids"],
                           input_mask=ph["input_mask"], token_type_ids=ph["segment_ids"])
mlm_loss, _, mlm_log_probs = run_pretraining.get_masked_lm_output(
    config, model.get_sequence_output(), model.get_embedding_table(),
    ph["masked_lm_positions"], ph["masked_lm_ids"], ph["masked_lm_weights"])
nsp_loss, _, nsp_log_probs = run_pretraining.get_next_sentence_output(
    config, model.get_pooled_output(), ph["next_sentence_labels"])
total = mlm_loss + nsp_loss
with tf.Session() as sess:
  # GR's heads initialise output biases to zero; randomise them so they are tested too.
  sess.run(tf.global_variables_initializer())
  for v in tf.global_variables():
    if "bias" in v.name or "beta" in v.name or "gamma" in v.name:
      sess.run(v.assign(v + tf.random.normal(tf.shape(v), stddev=0.1, seed=1)))
  tf.train.Saver().save(sess, work + "/bert_model.ckpt", write_meta_graph=False)
  out = sess.run(dict(sequence_output=model.get_sequence_output(),
                      pooled_output=model.get_pooled_output(),
                      all_encoder_layers=model.get_all_encoder_layers(),
                      embedding_output=model.get_embedding_output(),
                      mlm_log_probs=mlm_log_probs, nsp_log_probs=nsp_log_probs,
                      mlm_loss=mlm_loss, nsp_loss=nsp_loss, total=total))
out["all_encoder_layers"] = np.stack(out["all_encoder_layers"])
np.savez(work + "/gr_outputs.npz", **out)
json.dump(sorted(v.name[:-2] for v in tf.global_variables()), open(work + "/names.json", "w"))
"""


def _inputs(rng):
  mask = np.ones((B, S), np.int32)
  mask[1, 7:] = 0
  mask[2, 4:] = 0
  return dict(
      input_ids=rng.integers(0, TINY["vocab_size"], (B, S)).astype(np.int32) * mask,
      input_mask=mask,
      segment_ids=(rng.integers(0, TINY["type_vocab_size"], (B, S)) * mask).astype(np.int32),
      masked_lm_positions=rng.integers(0, 4, (B, P)).astype(np.int32),
      masked_lm_ids=rng.integers(0, TINY["vocab_size"], (B, P)).astype(np.int32),
      masked_lm_weights=np.array([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], np.float32),
      next_sentence_labels=np.array([[0], [1], [1]], np.int32))


@pytest.fixture(scope="module")
def gr_run(tmp_path_factory):
  work = str(tmp_path_factory.mktemp("gr_modeling"))
  inputs = _inputs(np.random.default_rng(7))
  np.savez(os.path.join(work, "inputs.npz"), **inputs)
  with open(os.path.join(work, "bert_config.json"), "w") as f:
    json.dump(TINY, f)
  gr_reference.run_gr("modeling", [work], code=_GR_SCRIPT)
  with open(os.path.join(work, "names.json")) as f:
    names = json.load(f)
  return work, inputs, dict(np.load(os.path.join(work, "gr_outputs.npz"))), names


def test_variable_names_are_grs(gr_run):
  work, _, _, gr_names = gr_run
  model = models.BertPretrainer(configs.BertConfig(**TINY))
  ours = checkpoints.model_variables(model)
  assert sorted(ours) == gr_names
  reader = tf.train.load_checkpoint(os.path.join(work, "bert_model.ckpt"))
  shapes = reader.get_variable_to_shape_map()
  for name, variable in ours.items():
    assert tuple(shapes[name]) == tuple(variable.shape), name


def _pretrainer_from_gr(work):
  """Our BertPretrainer holding the weights GR's script saved in `work`."""
  model = models.BertPretrainer(configs.BertConfig.from_json_file(
      os.path.join(work, "bert_config.json")))
  model.build()
  checkpoints.assign_weights(model, checkpoints.read_tf1(os.path.join(work, "bert_model.ckpt")))
  return model


def test_outputs_match_gr(gr_run):
  work, inputs, gr, _ = gr_run
  model = _pretrainer_from_gr(work)
  out = model(inputs, training=False)
  enc = model.bert(inputs, training=False)
  np.testing.assert_allclose(enc["sequence_output"], gr["sequence_output"], atol=1e-5)
  np.testing.assert_allclose(enc["pooled_output"], gr["pooled_output"], atol=1e-5)
  np.testing.assert_allclose(enc["embedding_output"], gr["embedding_output"], atol=1e-5)
  np.testing.assert_allclose(np.stack(enc["all_encoder_layers"]), gr["all_encoder_layers"],
                             atol=1e-5)
  mlm_log_probs = tf.nn.log_softmax(out["masked_lm_logits"]).numpy().reshape(B * P, -1)
  np.testing.assert_allclose(mlm_log_probs, gr["mlm_log_probs"], atol=1e-5)
  np.testing.assert_allclose(tf.nn.log_softmax(out["next_sentence_logits"]),
                             gr["nsp_log_probs"], atol=1e-5)
  loss, metrics = pretraining.pretraining_loss(inputs, out)
  np.testing.assert_allclose(metrics["masked_lm_loss"], gr["mlm_loss"], atol=1e-5)
  np.testing.assert_allclose(metrics["next_sentence_loss"], gr["nsp_loss"], atol=1e-5)
  np.testing.assert_allclose(loss, gr["total"], atol=1e-5)


def test_last_layer_at_masked_positions_only_is_exact(gr_run):
  # The pre-trainer runs the last layer only at [CLS] and the masked positions: the same
  # outputs as GR's full sequence output gathered, and the same gradients as the full path.
  work, inputs, gr, _ = gr_run
  model = _pretrainer_from_gr(work)
  pos = inputs["masked_lm_positions"]
  sparse = model.bert(inputs, output_positions=pos)
  np.testing.assert_allclose(sparse["sequence_output"],
                             np.take_along_axis(gr["sequence_output"], pos[..., None], 1),
                             atol=1e-5)
  np.testing.assert_allclose(sparse["pooled_output"], gr["pooled_output"], atol=1e-5)

  def full_path(features):
    enc = model.bert(features)
    mlm, nsp = model.cls(enc["sequence_output"], enc["pooled_output"],
                         features["masked_lm_positions"], model.bert.embedding_table)
    return dict(masked_lm_logits=mlm, next_sentence_logits=nsp)

  grads = []
  for forward in (model, full_path):
    with tf.GradientTape() as tape:
      loss, _ = pretraining.pretraining_loss(inputs, forward(inputs))
    grads.append([tf.convert_to_tensor(g) for g in tape.gradient(loss,
                                                                 model.trainable_variables)])
  assert len(grads[0]) == len(grads[1]) == len(model.trainable_variables)
  for v, a, b in zip(model.trainable_variables, *grads):
    np.testing.assert_allclose(a, b, atol=1e-6, err_msg=v.path)


def test_gelu_forms_and_gradients_by_hand():
  x = np.array([-3.0, -0.5, 0.0, 0.7, 2.5], np.float32)
  inner = np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)
  tanh_form = 0.5 * x * (1 + np.tanh(inner))
  tanh_grad = (0.5 * (1 + np.tanh(inner)) + 0.5 * x * (1 - np.tanh(inner) ** 2) *
               np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x ** 2))
  from math import erf  # pylint: disable=import-outside-toplevel
  erf_form = np.array([0.5 * v * (1 + erf(v / np.sqrt(2))) for v in x], np.float32)
  erf_grad = np.array([0.5 * (1 + erf(v / np.sqrt(2))) + v * np.exp(-v * v / 2) /
                       np.sqrt(2 * np.pi) for v in x], np.float32)
  for fn, value, slope in ((activations.gelu, tanh_form, tanh_grad),
                           (activations.gelu_exact, erf_form, erf_grad)):
    t = tf.constant(x)
    with tf.GradientTape() as tape:
      tape.watch(t)
      y = fn(t)
    np.testing.assert_allclose(y, value, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(y, t), slope, atol=1e-6)
  assert not np.allclose(tanh_form, erf_form, atol=1e-6)  # the two really differ


def test_padding_does_not_change_real_tokens():
  """The [B, F, T] mask: extra padding leaves real positions' outputs unchanged."""
  config = configs.BertConfig(**TINY)
  model = encoder.BertModel(config)
  ids = np.array([[5, 6, 7, 8]], np.int32)
  short = model({"input_ids": ids, "input_mask": np.ones_like(ids)})["sequence_output"]
  padded_ids = np.pad(ids, [[0, 0], [0, 5]])
  mask = (padded_ids > 0).astype(np.int32)
  long = model({"input_ids": padded_ids, "input_mask": mask})["sequence_output"]
  np.testing.assert_allclose(short, long[:, :4], atol=1e-5)


def test_classifier_mean_pooling_by_hand():
  """pooling="mean": logits = (mean of real tokens' final states) @ W^T + b; padding ignored."""
  config = configs.BertConfig(**TINY)
  clf = models.BertClassifier(config, 3, pooling="mean")
  clf.build()
  ids = np.array([[5, 6, 7, 0, 0], [9, 10, 11, 12, 13]], np.int32)
  mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.int32)
  features = {"input_ids": ids, "input_mask": mask}
  seq = clf.bert(features)["sequence_output"].numpy()
  pooled = np.stack([seq[0, :3].mean(0), seq[1].mean(0)])
  want = pooled @ clf.output_weights.numpy().T + clf.output_bias.numpy()
  np.testing.assert_allclose(clf(features).numpy(), want, atol=1e-5)
  other_padding = {"input_ids": np.where(mask > 0, ids, 42), "input_mask": mask}
  np.testing.assert_allclose(clf(other_padding).numpy(), want, atol=1e-5)
  # The same variables as GR's head, so either pooling restores the other's checkpoint.
  cls = models.BertClassifier(config, 3)
  cls.build()
  assert [v.path for v in cls.weights] == [v.path for v in clf.weights]
  with pytest.raises(ValueError, match="pooling"):
    models.BertClassifier(config, 3, pooling="max")


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(policy):
  import keras  # pylint: disable=import-outside-toplevel
  config = configs.BertConfig(**TINY)
  inputs = _inputs(np.random.default_rng(3))
  ref_model = models.BertPretrainer(config)
  ref_model.build()
  weights = checkpoints.get_weights(ref_model)
  ref, _ = pretraining.pretraining_loss(inputs, ref_model(inputs))
  keras.mixed_precision.set_dtype_policy(policy)
  try:
    model = models.BertPretrainer(config)
    model.build()
    checkpoints.assign_weights(model, weights)
    out = model(inputs)
    loss, _ = pretraining.pretraining_loss(inputs, out)
  finally:
    keras.mixed_precision.set_dtype_policy("float32")
  seq = model.bert(inputs)["sequence_output"]
  assert seq.dtype == tf.float32  # LayerNorm output stays float32
  assert model.bert.encoder.blocks[0].attention.self_attention.query.compute_dtype != "float32"
  assert out["masked_lm_logits"].dtype == tf.float32
  np.testing.assert_allclose(loss, ref, rtol=0.05)


def test_xla_compiles_train_step():
  config = configs.BertConfig(**TINY)
  model = models.BertPretrainer(config)
  model.build()
  inputs = _inputs(np.random.default_rng(5))

  @tf.function(jit_compile=True)
  def step(features):
    with tf.GradientTape() as tape:
      loss, _ = pretraining.pretraining_loss(features, model(features, training=True))
    return loss, tape.gradient(loss, model.trainable_variables)

  loss, grads = step(inputs)
  eager_loss, _ = pretraining.pretraining_loss(inputs, model(inputs, training=False))
  assert np.isfinite(loss.numpy())
  assert all(g is not None for g in grads)
  assert abs(float(loss) - float(eager_loss)) < 1.0  # dropout on; same ballpark


def test_masked_lm_loss_gradient_and_accuracy_by_hand():
  """The written-out cross entropy (XLA forward/backward) against numpy's softmax - one_hot."""
  rng = np.random.default_rng(7)
  logits = rng.normal(size=(3, 4, 50)).astype(np.float32) * 3
  ids = rng.integers(0, 50, (3, 4)).astype(np.int32)
  ids[0, 0] = logits[0, 0].argmax()  # at least one correct prediction
  weights = (rng.random((3, 4)) > 0.3).astype(np.float32)
  x = tf.Variable(logits)
  with tf.GradientTape() as tape:
    loss, accuracy = pretraining.masked_lm_loss_and_accuracy(x, ids, weights)
  grad = tape.gradient(loss, x).numpy()
  shifted = logits - logits.max(-1, keepdims=True)
  probs = np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)
  one_hot = np.eye(50, dtype=np.float32)[ids]
  denominator = weights.sum() + 1e-5
  nll = -np.log((probs * one_hot).sum(-1))
  np.testing.assert_allclose(loss, (nll * weights).sum() / denominator, rtol=1e-5)
  np.testing.assert_allclose(grad, (probs - one_hot) * (weights / denominator)[..., None],
                             atol=1e-6)
  expected_accuracy = ((logits.argmax(-1) == ids) * weights).sum() / denominator
  assert expected_accuracy > 0
  np.testing.assert_allclose(accuracy, expected_accuracy, rtol=1e-6)


@pytest.mark.parametrize("shape", [(64, 128, 128), (7, 3, 5)])
def test_dropout_rate_scale_and_seeding(shape):
  from official_bert.layers import Dropout  # pylint: disable=import-outside-toplevel
  x = tf.ones(shape)
  assert np.array_equal(Dropout(0.1, seed=3)(x, training=False), x)  # identity at inference
  out = Dropout(0.1, seed=3)(x, training=True).numpy()
  assert out.shape == shape
  kept = out[out != 0]
  np.testing.assert_allclose(kept, 1 / 0.9, rtol=1e-6)  # survivors scaled by 1 / (1 - rate)
  if out.size > 10 ** 5:  # binomial sd of the dropped fraction: sqrt(0.09 / 1M) = 3e-4
    assert abs((out == 0).mean() - 0.1) < 2e-3
  again = Dropout(0.1, seed=3)
  assert np.array_equal(again(x, training=True), out)  # same seed, same mask
  assert not np.array_equal(again(x, training=True), out)  # the seed state advances
  half = Dropout(0.5, seed=3, dtype="mixed_bfloat16")(x, training=True)
  assert half.dtype == tf.bfloat16
