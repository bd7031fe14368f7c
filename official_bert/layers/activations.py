"""GR's activations by name (`hidden_act` in bert_config.json)."""

import math

import tensorflow as tf


def gelu(x):
  """GR's GELU: the tanh approximation (what Google's checkpoints were trained with).

  x * x * x rather than GR's tf.pow(x, 3): the same value to an ulp, far cheaper on CPU.
  """
  cdf = 0.5 * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))))
  return x * cdf


def gelu_exact(x):
  """The erf form of GELU (HF's "gelu")."""
  return 0.5 * x * (1.0 + tf.math.erf(x / tf.cast(math.sqrt(2.0), x.dtype)))


def get_activation(name):
  """Maps a `hidden_act` string to a function, as GR's modeling.get_activation."""
  table = {"gelu": gelu, "gelu_exact": gelu_exact, "relu": tf.nn.relu,
           "tanh": tf.tanh, "linear": None}
  if name not in table:
    raise ValueError(f"Unsupported activation {name!r}; one of {sorted(table)}")
  return table[name]
