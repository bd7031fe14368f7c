"""GR's activations by name (`hidden_act` in bert_config.json)."""

import math

import tensorflow as tf

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


# Each GELU is one XLA-fused elementwise pass forward and one backward, with the derivative
# written out, instead of a chain of TF kernels whose autodiff keeps every intermediate
# ([B, S, intermediate_size] each): ~3x faster on CPU for the same values.
@tf.function(jit_compile=True)
def _gelu_tanh(x):
  return x * (0.5 * (1.0 + tf.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x)))))


@tf.function(jit_compile=True)
def _gelu_tanh_grad(x, dy):
  t = tf.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x)))
  slope = _SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * (x * x))
  return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * slope)


@tf.function(jit_compile=True)
def _gelu_erf(x):
  return 0.5 * x * (1.0 + tf.math.erf(x * (1.0 / math.sqrt(2.0))))


@tf.function(jit_compile=True)
def _gelu_erf_grad(x, dy):
  cdf = 0.5 * (1.0 + tf.math.erf(x * (1.0 / math.sqrt(2.0))))
  pdf = tf.exp(-0.5 * (x * x)) * (1.0 / math.sqrt(2.0 * math.pi))
  return dy * (cdf + x * pdf)


@tf.custom_gradient
def gelu(x):
  """GR's GELU: the tanh approximation (what Google's checkpoints were trained with),
  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
  return _gelu_tanh(x), lambda dy: _gelu_tanh_grad(x, dy)


@tf.custom_gradient
def gelu_exact(x):
  """The erf form of GELU (HF's "gelu"): 0.5 x (1 + erf(x / sqrt(2)))."""
  return _gelu_erf(x), lambda dy: _gelu_erf_grad(x, dy)


def get_activation(name):
  """Maps a `hidden_act` string to a function, as GR's modeling.get_activation."""
  table = {"gelu": gelu, "gelu_exact": gelu_exact, "relu": tf.nn.relu,
           "tanh": tf.tanh, "linear": None}
  if name not in table:
    raise ValueError(f"Unsupported activation {name!r}; one of {sorted(table)}")
  return table[name]
