"""Cross-entropy losses shared by the tasks, named for what they compute.

`weighted_cross_entropy_and_accuracy` is GR's masked-LM reduction (pre-training's masked LM, and
tagging's loss over the labelled words); `mean_cross_entropy` is GR's per-example classification
loss (next sentence, run_classifier, the SQuAD start / end positions).
"""

import tensorflow as tf


# The [M, V] softmax of the MLM loss costs as much as a large matmul on CPU when run as a chain of
# TF kernels (max, sub, exp, sum, div, one-hot, ...); XLA fuses each direction into one or two
# passes. The matmuls around it stay outside XLA, where oneDNN is faster.
@tf.function(jit_compile=True)
def _softmax_cross_entropy_forward(logits, labels):
  """logits [M, V] f32, labels [M] -> nll [M], probs [M, V], correct [M] (argmax == label)."""
  top = tf.reduce_max(logits, -1, keepdims=True)                         # [M, 1]
  exp = tf.exp(logits - top)                                             # [M, V]
  total = tf.reduce_sum(exp, -1, keepdims=True)                          # [M, 1]
  nll = tf.squeeze(tf.math.log(total) + top, -1) - tf.gather(logits, labels, batch_dims=1)
  correct = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels)
  return nll, exp / total, tf.cast(correct, tf.float32)


@tf.function(jit_compile=True)
def _softmax_cross_entropy_backward(probs, labels, dy):
  """d nll / d logits = (softmax - one_hot(label)) * dy: [M, V]."""
  return (probs - tf.one_hot(labels, tf.shape(probs)[-1], dtype=probs.dtype)) * dy[:, tf.newaxis]


@tf.custom_gradient
def _cross_entropy(logits, labels):
  """-log_softmax(logits)[label] (GR's -sum(one_hot * log_probs)) and argmax == label: [M, V], [M].

  The gradient is written out (softmax - one_hot): autodiff of the gather would scatter into a
  zeroed [M, V] buffer, and TF's fused sparse_softmax_cross_entropy kernel is ~2x slower on CPU.
  """
  nll, probs, correct = _softmax_cross_entropy_forward(logits, labels)

  def grad(dy, unused_dcorrect):
    return _softmax_cross_entropy_backward(probs, labels, dy), None

  return (nll, correct), grad


def sparse_cross_entropy(logits, labels):
  """Per-position cross entropy and argmax == label: [B, P, V], [B, P] -> [B, P], [B, P]."""
  logits = tf.cast(logits, tf.float32)                                   # [B, P, V]
  labels = tf.cast(labels, tf.int32)                                     # [B, P]
  nll, correct = _cross_entropy(tf.reshape(logits, [-1, tf.shape(logits)[-1]]),
                                tf.reshape(labels, [-1]))                # [B*P]
  return tf.reshape(nll, tf.shape(labels)), tf.stop_gradient(tf.reshape(correct, tf.shape(labels)))


def weighted_mean(values, weights):
  """GR's masked-LM reduction: sum(weights * values) / (sum(weights) + 1e-5)."""
  weights = tf.cast(weights, tf.float32)
  return tf.reduce_sum(weights * values) / (tf.reduce_sum(weights) + 1e-5)


def weighted_cross_entropy_and_accuracy(logits, labels, weights):
  """Cross entropy and accuracy over the positions, weighted by `weights` / their sum (GR's MLM
  loss): logits [B, P, V], labels and weights [B, P] -> two scalars."""
  nll, correct = sparse_cross_entropy(logits, labels)                    # [B, P]
  return weighted_mean(nll, weights), weighted_mean(correct, weights)


def mean_cross_entropy(logits, labels):
  """Mean cross entropy over the batch: logits [B, K], labels [B] (or [B, 1]) -> scalar."""
  labels = tf.reshape(tf.cast(labels, tf.int32), [-1])                  # [B]
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=tf.cast(logits, tf.float32)))


def accuracy(logits, labels):
  """Fraction of argmax(logits) == labels: logits [B, K], labels [B] -> scalar."""
  labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
  correct = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels)
  return tf.reduce_mean(tf.cast(correct, tf.float32))
