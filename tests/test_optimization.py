"""Optimizers and schedule against updates computed by hand in numpy (GR's formulas)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from official_bert import optimization


def _gr_lr(step, init_lr, num_train, num_warmup):
  # GR optimization.create_optimizer: polynomial_decay(power=1, end=0) from step 0, then warmup.
  lr = init_lr * (1.0 - min(step, num_train) / num_train)
  if step < num_warmup:
    lr = init_lr * step / num_warmup
  return lr


def test_schedule_matches_gr_formula():
  sched = optimization.WarmupPolynomialDecay(1e-4, num_train_steps=100, num_warmup_steps=10)
  for step in [0, 1, 5, 9, 10, 11, 50, 99, 100, 150]:
    np.testing.assert_allclose(float(sched(step)), _gr_lr(step, 1e-4, 100, 10), rtol=1e-6,
                               atol=1e-12, err_msg=f"step {step}")
  assert float(sched(0)) == 0.0  # GR's first warmed-up update uses lr 0


def _vars():
  rng = np.random.default_rng(3)
  # Keras variable names cannot hold "/"; the exclusion regexes match substrings anyway.
  shapes = {"dense_kernel": (3, 5), "dense_bias": (5,), "LayerNorm_gamma": (5,),
            "attention_output_layer_norm_beta": (5,), "word_embeddings": (7, 5)}
  return {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}


def _run_keras(opt, init, grads_per_step):
  variables = [keras.Variable(v, name=k) for k, v in init.items()]
  for grads in grads_per_step:
    opt.apply([tf.constant(grads[k]) for k in init], variables)
  return {k: v.numpy() for k, v in zip(init, variables)}


def _grads(init, steps, scale):
  rng = np.random.default_rng(7)
  return [{k: (scale * rng.normal(size=v.shape)).astype(np.float32) for k, v in init.items()}
          for _ in range(steps)]


def _clip(grads, clip_norm):
  norm = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
  return {k: g * clip_norm / max(norm, clip_norm) for k, g in grads.items()}, norm


def _excluded(name):
  return any(s in name for s in ("LayerNorm", "layer_norm", "bias"))


@pytest.mark.parametrize("bias_correction", [False, True])
@pytest.mark.parametrize("grad_scale", [0.01, 10.0])  # below and above the clip norm
def test_adam_weight_decay_matches_gr(grad_scale, bias_correction):
  init, lr, wd, steps = _vars(), 0.05, 0.01, 4
  grads = _grads(init, steps, grad_scale)
  got = _run_keras(optimization.AdamWeightDecay(lr, weight_decay_rate=wd,
                                                bias_correction=bias_correction), init, grads)
  # GR's AdamWeightDecayOptimizer.apply_gradients, in float64 by hand; with bias correction
  # the Adam term (not the decay) is scaled as in Model Garden's AdamWeightDecay.
  w = {k: v.astype(np.float64) for k, v in init.items()}
  m = {k: np.zeros_like(v) for k, v in w.items()}
  v2 = {k: np.zeros_like(v) for k, v in w.items()}
  norms = []
  for t, g in enumerate(grads, start=1):
    g, norm = _clip({k: x.astype(np.float64) for k, x in g.items()}, 1.0)
    norms.append(norm)
    factor = np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) if bias_correction else 1.0
    for k in w:
      m[k] = 0.9 * m[k] + 0.1 * g[k]
      v2[k] = 0.999 * v2[k] + 0.001 * g[k] ** 2
      update = factor * m[k] / (np.sqrt(v2[k]) + 1e-6)
      if not _excluded(k):
        update = update + wd * w[k]
      w[k] = w[k] - lr * update
  assert (max(norms) > 1.0) == (grad_scale > 1.0)
  for k in w:
    np.testing.assert_allclose(got[k], w[k], rtol=2e-5, atol=2e-6, err_msg=k)


@pytest.mark.parametrize("bias_correction", [False, True])
def test_adam_weight_decay_first_step_size(bias_correction):
  # Without bias correction the first step is 0.1 g / (sqrt(0.001) |g| + eps) ~= 3.16 * lr * sign(g);
  # bias-corrected Adam moves each weight by ~lr.
  init = {"LayerNorm_gamma": np.ones([4], np.float32)}
  g = {"LayerNorm_gamma": np.array([1e-3, -2e-3, 3e-3, -4e-3], np.float32)}
  opt = optimization.AdamWeightDecay(0.1, bias_correction=bias_correction)
  got = _run_keras(opt, init, [g])["LayerNorm_gamma"]
  gg = g["LayerNorm_gamma"].astype(np.float64)
  factor = np.sqrt(0.001) / 0.1 if bias_correction else 1.0
  np.testing.assert_allclose(
      got, 1.0 - 0.1 * factor * (0.1 * gg) / (np.sqrt(0.001) * np.abs(gg) + 1e-6), rtol=1e-6)
  step = 0.1 if bias_correction else 0.1 / np.sqrt(0.1)
  np.testing.assert_allclose(np.abs(1.0 - got), step, rtol=5e-2)  # eps is ~3 % of sqrt(v) here


def test_lamb_matches_model_garden_formula():
  init, lr, wd, steps = _vars(), 0.01, 0.01, 3
  init["zero_kernel"] = np.zeros([2, 3], np.float32)  # trust ratio falls back to 1
  grads = _grads(init, steps, 0.5)
  got = _run_keras(optimization.LAMB(lr, weight_decay_rate=wd), init, grads)
  w = {k: v.astype(np.float64) for k, v in init.items()}
  m = {k: np.zeros_like(v) for k, v in w.items()}
  v2 = {k: np.zeros_like(v) for k, v in w.items()}
  for t, g in enumerate(grads, start=1):
    g, _ = _clip({k: x.astype(np.float64) for k, x in g.items()}, 1.0)
    for k in w:
      m[k] = 0.9 * m[k] + 0.1 * g[k]
      v2[k] = 0.999 * v2[k] + 0.001 * g[k] ** 2
      u = (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v2[k] / (1 - 0.999 ** t)) + 1e-6)
      ratio = 1.0
      if not _excluded(k):
        u = u + wd * w[k]
        wn, un = np.linalg.norm(w[k]), np.linalg.norm(u)
        ratio = wn / un if wn > 0 and un > 0 else 1.0
      w[k] = w[k] - ratio * lr * u
  for k in w:
    np.testing.assert_allclose(got[k], w[k], rtol=2e-5, atol=2e-6, err_msg=k)


def test_exclusion_uses_keras_paths():
  inputs = keras.Input([3])
  x = keras.layers.Dense(4, name="dense")(inputs)
  x = keras.layers.LayerNormalization(name="LayerNorm")(x)
  model = keras.Model(inputs, x)
  opt = optimization.AdamWeightDecay(0.0, weight_decay_rate=0.5)
  opt.build(model.trainable_variables)
  flags = {v.path: opt._decays(v) for v in model.trainable_variables}  # pylint: disable=protected-access
  assert flags == {"dense/kernel": True, "dense/bias": False, "LayerNorm/gamma": False,
                   "LayerNorm/beta": False}, flags


def test_create_optimizer_types():
  opt = optimization.create_optimizer(1e-4, 10, 2, "lamb")
  assert isinstance(opt, optimization.LAMB)
  opt = optimization.create_optimizer(1e-4, 10, 2, "adamw", mixed_precision="float16")
  assert isinstance(optimization.inner_optimizer(opt), optimization.AdamWeightDecay)
  assert not optimization.inner_optimizer(opt).bias_correction  # GR's update by default
  opt = optimization.create_optimizer(1e-4, 10, 2, "adamw", adam_bias_correction=True)
  assert opt.bias_correction and opt.get_config()["bias_correction"]
  with pytest.raises(ValueError, match="optimizer="):
    optimization.create_optimizer(1e-4, 10, 2, "sgd")


def test_layerwise_lr_decay_scales_each_layer_by_hand():
  from official_bert import configs, models  # pylint: disable=import-outside-toplevel
  model = models.BertClassifier(configs.BertConfig(
      vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
      intermediate_size=16), 2)
  model.build()
  tvars = model.trainable_variables
  paths = [v.path for v in tvars]
  # ELECTRA's depths with L = 2: embeddings 0, layer_0 1, layer_1 2, pooler 3, head 4.
  want = {"output_weights": 1.0, "bert/pooler/dense/kernel": 0.5,
          "bert/encoder/layer_1/output/dense/bias": 0.25,
          "bert/encoder/layer_0/attention/self/query/kernel": 0.125,
          "bert/embeddings/word_embeddings": 0.0625, "bert/embeddings/LayerNorm/gamma": 0.0625}
  scales = dict(zip(paths, optimization.layerwise_lr_scales(paths, 0.5)))
  for suffix, scale in want.items():
    assert scales[f"bert_classifier/{suffix}"] == scale, suffix
  assert optimization.layerwise_lr_scales(paths, 1.0) == [1.0] * len(paths)
  # One GR update (no weight decay, no clip): each variable moves by lr * its scale * the
  # uncorrected Adam step 0.1 g / (sqrt(0.001) g + eps).
  before = [v.numpy().copy() for v in tvars]
  opt = optimization.AdamWeightDecay(0.01, weight_decay_rate=0.0, clip_norm=None,
                                     layerwise_lr_decay=0.5)
  g = 0.02
  opt.apply([tf.fill(v.shape, g) for v in tvars], tvars)
  step = 0.1 * g / (np.sqrt(0.001) * g + 1e-6)
  for v, w0, path in zip(tvars, before, paths):
    np.testing.assert_allclose(w0 - v.numpy(), 0.01 * scales[path] * step, rtol=1e-4,
                               err_msg=path)


def test_run_script_flags_reach_the_optimizer():
  from types import SimpleNamespace  # pylint: disable=import-outside-toplevel
  from official_bert.cli import common_flags  # pylint: disable=import-outside-toplevel
  flags = SimpleNamespace(learning_rate=3e-5, optimizer="adamw", mixed_precision="float32",
                          adam_bias_correction=True, layerwise_lr_decay=0.5)
  opt = common_flags.optimizer_fn(flags, num_train_steps=100, num_warmup_steps=10)()
  assert opt.bias_correction and opt.layerwise_lr_decay == 0.5
  assert float(opt.learning_rate) == 0.0  # GR's warmup starts at 0
  schedule = opt._learning_rate  # pylint: disable=protected-access
  assert (schedule.init_lr, schedule.num_train_steps, schedule.num_warmup_steps) == (3e-5, 100, 10)
  # run_pretraining has no --layerwise_lr_decay: one rate.
  del flags.layerwise_lr_decay
  flags.adam_bias_correction = False
  opt = common_flags.optimizer_fn(flags, 100, 10)()
  assert not opt.bias_correction and opt.layerwise_lr_decay == 1.0


_GR_OPTIMIZER = r"""
import json, sys
import numpy as np
import tensorflow as tf  # tf.compat.v1 under the shim
from bert import optimization as gr_optimization

spec = json.loads(open(sys.argv[1]).read())
init = {k: np.array(v, np.float32) for k, v in spec["init"].items()}
tf.disable_eager_execution()
feeds, loss = {}, 0.0
for name, value in init.items():
  w = tf.get_variable(name, initializer=value)
  g = tf.placeholder(tf.float32, value.shape)
  feeds[name] = g
  loss += tf.reduce_sum(w * g)  # d loss / d w = g: the gradients are fed as they are
train_op = gr_optimization.create_optimizer(loss, spec["lr"], spec["num_train_steps"],
                                            spec["num_warmup_steps"], use_tpu=False)
with tf.Session() as sess:
  sess.run(tf.global_variables_initializer())
  for step in spec["grads"]:
    sess.run(train_op, {feeds[k]: np.array(v, np.float32) for k, v in step.items()})
  out = {v.op.name: sess.run(v).tolist() for v in tf.trainable_variables()}
open(sys.argv[2], "w").write(json.dumps(out))
"""


def test_create_optimizer_matches_grs_own_code(tmp_path):
  # GR's create_optimizer (warmup, polynomial decay, clip at global norm 1, AdamWeightDecay,
  # exclusions by name) run by GR's code on the same gradients, against ours.
  import json  # pylint: disable=import-outside-toplevel
  import gr_reference  # pylint: disable=import-outside-toplevel
  if not gr_reference.gr_available():
    pytest.skip("bert-tensorflow is not installed")
  init, steps = _vars(), 6
  grads = [g if i % 2 else {k: 20.0 * x for k, x in g.items()}  # every other step is clipped
           for i, g in enumerate(_grads(init, steps, 0.3))]
  spec = {"init": {k: v.tolist() for k, v in init.items()}, "lr": 0.05, "num_train_steps": 10,
          "num_warmup_steps": 2, "grads": [{k: x.tolist() for k, x in g.items()} for g in grads]}
  (tmp_path / "spec.json").write_text(json.dumps(spec))
  gr_reference.run_gr("optimization", [str(tmp_path / "spec.json"), str(tmp_path / "gr.json")],
                      code=_GR_OPTIMIZER, timeout=600)
  gr = json.loads((tmp_path / "gr.json").read_text())
  ours = _run_keras(optimization.create_optimizer(0.05, 10, 2, adam_bias_correction=False),
                   init, grads)
  for k in init:
    assert not np.allclose(gr[k], init[k]), k  # every variable moved
    np.testing.assert_allclose(ours[k], np.array(gr[k], np.float32), rtol=1e-5, atol=1e-6,
                               err_msg=k)


def test_keras_calls_the_gradient_hook_once_per_apply():
  # _BertOptimizer relies on one private Keras hook, `_all_reduce_sum_gradients`: Keras' TF
  # optimizer calls it with all gradients before the per-variable updates, and GR's global-norm
  # clip lives there. If a Keras release renames or stops calling it, this fails.
  from keras.src.backend.tensorflow import optimizer as tf_optimizer  # pylint: disable=import-outside-toplevel
  assert hasattr(tf_optimizer.TFOptimizer, "_all_reduce_sum_gradients")
  calls = []

  class Counting(optimization.AdamWeightDecay):

    def _all_reduce_sum_gradients(self, grads_and_vars):
      calls.append(len(list(grads_and_vars)))
      return super()._all_reduce_sum_gradients(grads_and_vars)

  variables = [keras.Variable(np.ones([3], np.float32), name=f"v{i}") for i in range(2)]
  opt = Counting(0.1, clip_norm=1.0)
  opt.apply([tf.constant([30.0, 0.0, 0.0]), tf.constant([0.0, 40.0, 0.0])], variables)
  assert calls == [2]
  # Clipped to norm 1 ([0.6, 0, 0], [0, 0.8, 0]) before Adam: the first moment shows it.
  np.testing.assert_allclose(opt._m[0].numpy(), [0.06, 0.0, 0.0], rtol=1e-6)  # pylint: disable=protected-access
  np.testing.assert_allclose(opt._m[1].numpy(), [0.0, 0.08, 0.0], rtol=1e-6)  # pylint: disable=protected-access
