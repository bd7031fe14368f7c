"""Optimizers for BERT: GR's AdamWeightDecay, LAMB, and GR's learning-rate schedule.

GR's `optimization.py` (TF1) defines the recipe every BERT run uses:
  * learning rate: linear warmup from 0 over `num_warmup_steps`, and polynomial decay (power 1)
    from `init_lr` to 0 over `num_train_steps` (the decay is measured from step 0, not from the end
    of warmup, exactly as GR);
  * gradients clipped to global norm 1.0;
  * `AdamWeightDecay`: Adam *without bias correction*, beta1 0.9, beta2 0.999, epsilon 1e-6, and
    weight decay 0.01 added to the update (not to the gradient, so it stays out of m and v),
    skipped for variables whose name matches "LayerNorm", "layer_norm" or "bias".

`tf-models-official` ships both optimizers only for tf_keras (Keras 2), and Keras 3's `AdamW` /
`Lamb` use bias correction and a different decay form, so they are written here as Keras 3
optimizers. `LAMB` follows Model Garden / NVIDIA: bias-corrected Adam moments, decay added to the
update, then the update scaled by the layer-wise trust ratio ||w|| / ||update||.

Distribution contract: `official_bert.training.loop` all-reduces gradients itself (so that the
global-norm clip sees the global gradient, which makes N replicas equal to one device) and then
calls `apply_reduced_gradients`. Used any other way (e.g. `model.fit`), these optimizers
all-reduce like any Keras optimizer and clip after the all-reduce.
"""

import re

import keras
import tensorflow as tf

# GR's exclusion list for weight decay (and LAMB's layer adaptation).
EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")


@keras.saving.register_keras_serializable("official_bert")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
  """GR's schedule: `init_lr * step / num_warmup_steps` during warmup, else polynomial decay.

  `step` is the number of updates already applied (GR's `global_step` before the increment), so
  the first update of a warmed-up run uses learning rate 0, as in GR.
  """

  def __init__(self, init_lr, num_train_steps, num_warmup_steps=0, end_lr=0.0, power=1.0):
    self.init_lr = float(init_lr)
    self.num_train_steps = int(num_train_steps)
    self.num_warmup_steps = int(num_warmup_steps or 0)
    self.end_lr = float(end_lr)
    self.power = float(power)
    if self.num_train_steps <= 0:
      raise ValueError(f"num_train_steps={num_train_steps} must be > 0")

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    decay_steps = float(self.num_train_steps)
    frac = 1.0 - tf.minimum(step, decay_steps) / decay_steps
    lr = (self.init_lr - self.end_lr) * tf.pow(frac, self.power) + self.end_lr
    if self.num_warmup_steps:
      warmup_lr = self.init_lr * (step / float(self.num_warmup_steps))
      lr = tf.where(step < float(self.num_warmup_steps), warmup_lr, lr)
    return lr

  def get_config(self):
    return dict(init_lr=self.init_lr, num_train_steps=self.num_train_steps,
                num_warmup_steps=self.num_warmup_steps, end_lr=self.end_lr, power=self.power)


def layerwise_lr_scales(paths, decay):
  """ELECTRA's layer-wise learning-rate decay: a factor per variable path.

  Depth 0 for the embeddings, k + 1 for `encoder/layer_k`, L + 1 for the pooler, L + 2 for
  everything above (the task heads); the factor is decay ** (L + 2 - depth), so the heads train
  at the full rate and each layer below at `decay` times the one above. decay=1: all 1.
  """
  if decay == 1.0:
    return [1.0] * len(paths)
  layer = re.compile(r"(?:^|/)encoder/layer_(\d+)/")
  num_layers = 1 + max((int(m.group(1)) for m in map(layer.search, paths) if m), default=-1)

  def depth(path):
    m = layer.search(path)
    if m:
      return int(m.group(1)) + 1
    if re.search(r"(?:^|/)embeddings/", path):
      return 0
    if re.search(r"(?:^|/)pooler/", path):
      return num_layers + 1
    return num_layers + 2

  return [decay ** (num_layers + 2 - depth(p)) for p in paths]


class _BertOptimizer(keras.optimizers.Optimizer):
  """Shared machinery: Adam moments, per-variable decay flags, GR's global-norm clip,
  pre-reduced gradients."""

  def __init__(self, learning_rate, weight_decay_rate=0.0,
               exclude_from_weight_decay=EXCLUDE_FROM_WEIGHT_DECAY, clip_norm=1.0,
               beta_1=0.9, beta_2=0.999, epsilon=1e-6, layerwise_lr_decay=1.0, name=None,
               **kwargs):
    super().__init__(learning_rate=learning_rate, name=name, **kwargs)
    self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
    self.layerwise_lr_decay = float(layerwise_lr_decay)
    self.weight_decay_rate = float(weight_decay_rate)
    self.exclude_from_weight_decay = tuple(exclude_from_weight_decay or ())
    self.clip_norm = clip_norm
    self._gradients_reduced = False

  def _excluded(self, path):
    return any(re.search(p, path) for p in self.exclude_from_weight_decay)

  def build(self, var_list):
    if self.built:
      return
    super().build(var_list)
    # Decided once from the full Keras path ("bert/encoder/layer_0/.../LayerNorm/gamma");
    # inside update_step the variable is a bare tf.Variable without that path.
    paths = [getattr(v, "path", v.name) for v in var_list]
    self._excluded_flags = [self._excluded(p) for p in paths]
    self._lr_scales = layerwise_lr_scales(paths, self.layerwise_lr_decay)
    self._m, self._v = self.add_optimizer_variables(var_list, ["m", "v"])

  def _step_inputs(self, gradient, variable, learning_rate):
    """(g, lr, index, m, v) for one variable's update, in the variable's dtype."""
    dtype = variable.dtype
    i = self._get_variable_index(variable)
    lr = learning_rate if self._lr_scales[i] == 1.0 else learning_rate * self._lr_scales[i]
    return (tf.cast(tf.convert_to_tensor(gradient), dtype), tf.cast(lr, dtype), i,
            self._m[i], self._v[i])

  def _decays(self, variable):
    return (self.weight_decay_rate > 0 and
            not self._excluded_flags[self._get_variable_index(variable)])

  def _all_reduce_sum_gradients(self, grads_and_vars):
    # The one private Keras hook used here: Keras' TF optimizer calls it with all gradients at
    # once, just before the per-variable updates (tests/test_optimization.py checks that it
    # still does). All-reduce unless the training loop already did, then GR's global-norm clip.
    grads_and_vars = list(grads_and_vars)
    if not self._gradients_reduced:
      grads_and_vars = super()._all_reduce_sum_gradients(grads_and_vars)
    if not self.clip_norm:
      return grads_and_vars
    grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
             for g, _ in grads_and_vars]
    clipped, _ = tf.clip_by_global_norm(grads, clip_norm=self.clip_norm)
    return list(zip(clipped, [v for _, v in grads_and_vars]))

  def get_config(self):
    config = super().get_config()
    config.update(weight_decay_rate=self.weight_decay_rate,
                  exclude_from_weight_decay=list(self.exclude_from_weight_decay),
                  clip_norm=self.clip_norm, beta_1=self.beta_1, beta_2=self.beta_2,
                  epsilon=self.epsilon, layerwise_lr_decay=self.layerwise_lr_decay)
    return config


@keras.saving.register_keras_serializable("official_bert")
class AdamWeightDecay(_BertOptimizer):
  """GR's `AdamWeightDecayOptimizer`: Adam without bias correction, decoupled weight decay.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
    w <- w - lr * (m / (sqrt(v) + eps) + wd * w)     (wd = 0 for excluded variables)

  bias_correction=True: the Adam term is scaled by sqrt(1 - b2^t) / (1 - b1^t) (t = updates
  so far + 1) and the decay term is not, as in Model Garden's AdamWeightDecay.
  """

  def __init__(self, learning_rate=5e-5, weight_decay_rate=0.01, beta_1=0.9, beta_2=0.999,
               epsilon=1e-6, exclude_from_weight_decay=EXCLUDE_FROM_WEIGHT_DECAY,
               clip_norm=1.0, bias_correction=False, name="AdamWeightDecay", **kwargs):
    super().__init__(learning_rate, weight_decay_rate, exclude_from_weight_decay, clip_norm,
                     beta_1, beta_2, epsilon, name=name, **kwargs)
    self.bias_correction = bool(bias_correction)

  def update_step(self, gradient, variable, learning_rate):
    g, lr, _, m, v = self._step_inputs(gradient, variable, learning_rate)
    decay = self.weight_decay_rate if self._decays(variable) else 0.0
    correction = 1.0
    if self.bias_correction:
      t = tf.cast(self.iterations + 1, variable.dtype)
      correction = tf.sqrt(1.0 - tf.pow(tf.cast(self.beta_2, variable.dtype), t)) / (
          1.0 - tf.pow(tf.cast(self.beta_1, variable.dtype), t))
    next_w, next_m, next_v = _adam_weight_decay_update(
        tf.convert_to_tensor(variable), tf.convert_to_tensor(m), tf.convert_to_tensor(v), g, lr,
        self.beta_1, self.beta_2, self.epsilon, decay, correction)
    self.assign(variable, next_w)
    self.assign(m, next_m)
    self.assign(v, next_v)

  def get_config(self):
    config = super().get_config()
    config.update(bias_correction=self.bias_correction)
    return config


# One XLA-fused pass per variable instead of ~14 elementwise TF kernels. GR's expression order;
# XLA on CPU does not reassociate float arithmetic, so a float32 reference still agrees to an ulp.
@tf.function(jit_compile=True)
def _adam_weight_decay_update(w, m, v, g, lr, beta_1, beta_2, epsilon, decay, correction=1.0):
  next_m = beta_1 * m + (1.0 - beta_1) * g
  next_v = beta_2 * v + (1.0 - beta_2) * tf.square(g)
  update = next_m / (tf.sqrt(next_v) + epsilon) * correction  # x 1.0 is exact: GR's value
  if decay:
    update += decay * w
  return w - lr * update, next_m, next_v


@keras.saving.register_keras_serializable("official_bert")
class LAMB(_BertOptimizer):
  """LAMB (You et al. 2019) as in Model Garden / NVIDIA's BERT.

    m, v as Adam, bias-corrected; u = m_hat / (sqrt(v_hat) + eps) + wd * w
    w <- w - lr * r * u,  r = ||w|| / ||u|| (1 if either is 0, or for excluded variables)
  """

  def __init__(self, learning_rate=1e-3, weight_decay_rate=0.01, beta_1=0.9, beta_2=0.999,
               epsilon=1e-6, exclude_from_weight_decay=EXCLUDE_FROM_WEIGHT_DECAY,
               exclude_from_layer_adaptation=None, clip_norm=1.0, name="LAMB", **kwargs):
    super().__init__(learning_rate, weight_decay_rate, exclude_from_weight_decay, clip_norm,
                     beta_1, beta_2, epsilon, name=name, **kwargs)
    # Model Garden: layer adaptation excludes the same variables unless told otherwise.
    self.exclude_from_layer_adaptation = tuple(
        exclude_from_layer_adaptation if exclude_from_layer_adaptation is not None
        else self.exclude_from_weight_decay)

  def build(self, var_list):
    if self.built:
      return
    super().build(var_list)
    self._adapt_flags = [
        not any(re.search(p, getattr(v, "path", v.name)) for p in self.exclude_from_layer_adaptation)
        for v in var_list]

  def update_step(self, gradient, variable, learning_rate):
    g, lr, i, m, v = self._step_inputs(gradient, variable, learning_rate)
    dtype = variable.dtype
    step = tf.cast(self.iterations + 1, dtype)
    next_m = m * self.beta_1 + g * (1.0 - self.beta_1)
    next_v = v * self.beta_2 + tf.square(g) * (1.0 - self.beta_2)
    m_hat = next_m / (1.0 - tf.pow(tf.cast(self.beta_1, dtype), step))
    v_hat = next_v / (1.0 - tf.pow(tf.cast(self.beta_2, dtype), step))
    update = m_hat / (tf.sqrt(v_hat) + self.epsilon)
    if self._decays(variable):
      update += self.weight_decay_rate * variable
    ratio = 1.0
    if self._adapt_flags[i]:
      w_norm = tf.norm(variable, ord=2)
      u_norm = tf.norm(update, ord=2)
      ratio = tf.where(w_norm > 0, tf.where(u_norm > 0, w_norm / u_norm, 1.0), 1.0)
    self.assign(variable, variable - ratio * lr * update)
    self.assign(m, next_m)
    self.assign(v, next_v)

  def get_config(self):
    config = super().get_config()
    config.update(exclude_from_layer_adaptation=list(self.exclude_from_layer_adaptation))
    return config


def create_optimizer(init_lr, num_train_steps, num_warmup_steps, optimizer_type="adamw",
                     weight_decay_rate=0.01, clip_norm=1.0, mixed_precision="float32",
                     layerwise_lr_decay=1.0, adam_bias_correction=False):
  """GR's `create_optimizer` for Keras 3: schedule + AdamWeightDecay (or LAMB).

  For `mixed_precision="float16"` the optimizer is wrapped in Keras' dynamic
  `LossScaleOptimizer` (the training loop scales the loss with `scale_loss`).
  layerwise_lr_decay < 1: ELECTRA's per-layer rates (see `layerwise_lr_scales`).
  adam_bias_correction: AdamWeightDecay with Adam's bias correction (LAMB always has it).
  """
  schedule = WarmupPolynomialDecay(init_lr, num_train_steps, num_warmup_steps)
  kwargs = dict(weight_decay_rate=weight_decay_rate, clip_norm=clip_norm,
                layerwise_lr_decay=layerwise_lr_decay)
  if optimizer_type == "adamw":
    opt = AdamWeightDecay(schedule, bias_correction=adam_bias_correction, **kwargs)
  elif optimizer_type == "lamb":
    opt = LAMB(schedule, **kwargs)
  else:
    raise ValueError(f"optimizer={optimizer_type!r}: expected 'adamw' or 'lamb'")
  if mixed_precision == "float16":
    opt = keras.optimizers.LossScaleOptimizer(opt)
  return opt


def inner_optimizer(optimizer):
  """The optimizer that updates the weights (unwraps a LossScaleOptimizer)."""
  return getattr(optimizer, "inner_optimizer", optimizer)


def apply_reduced_gradients(optimizer, grads, variables):
  """Applies gradients that are already summed over replicas (in a replica context).

  Works with our optimizers (no second all-reduce; clip on the global gradient) and any
  other Keras optimizer when there is a single replica.
  """
  inner = inner_optimizer(optimizer)
  if not isinstance(inner, _BertOptimizer):
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and ctx.num_replicas_in_sync > 1:
      raise TypeError(
          f"{type(inner).__name__} would all-reduce the gradients a second time; use an "
          "optimizer from official_bert.optimization with more than one replica")
    optimizer.apply(grads, variables)
    return
  inner._gradients_reduced = True  # pylint: disable=protected-access
  try:
    optimizer.apply(grads, variables)
  finally:
    inner._gradients_reduced = False  # pylint: disable=protected-access
