r"""Roofline: this CPU's float32 matmul peak vs the FLOP/s our training steps reach.

  python benchmarks/roofline_bench.py --configs=mini,small --seq_len=128 --batch_size=32

Peak: the best of --peak_reps large square tf.matmul calls (--peak_n, float32, all threads).
Steps (the shared training loop, as benchmarks/pretraining_bench.py builds it; GR's
AdamWeightDecay and clip included), per config:
  pretraining  MLM (max_predictions_per_seq positions) + NSP;
  finetuning   BertClassifier, 2 labels (GR's run_classifier step).
FLOPs are counted analytically, a multiply-add = 2 FLOPs, training = 3 x forward (backward
computes two products per forward one). Per token per layer: QKV and output projections 8 H^2,
feed-forward 4 H I, attention scores and context 4 S H; in the last layer, which the heads read
at [CLS] (and the masked positions) only, keys and values (4 H^2) for every token and the rest
for those rows alone, as the model computes it. Plus pooler 2 H^2 per sequence, MLM
head (2 H^2 + 2 H V) per predicted position, classifier 2 H L. Embedding lookups, softmax,
LayerNorm, GELU, dropout and the optimizer update count 0 FLOPs (they cost time, not FLOPs):
the fraction is what a perfect step would reach.

Where the rest goes: every matmul shape of the step timed alone (forward and both backward
products, at the same shapes), summed: `matmul_only` is the step time if all else were free;
`optimizer` is one apply of the optimizer to the model's variables alone; the remainder is
elementwise ops, softmax, LayerNorm, gathers and framework overhead. Last line:
`<config>_<step>_fraction_of_peak=<x>` for each.
"""

import os
import statistics
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Reuses pretraining_bench's flags (config, seq_len, batch_size, ...) and its step builder.
from benchmarks import pretraining_bench  # pylint: disable=wrong-import-position

flags.DEFINE_list("configs", ["mini", "small"], "Model sizes to measure.")
flags.DEFINE_integer("peak_n", 2048, "Side of the square matmul for the peak.")
flags.DEFINE_integer("peak_reps", 10, "Peak matmul repetitions (best taken).")
flags.DEFINE_bool("jit", False, "Measure the steps with jit_compile (XLA).")
FLAGS = flags.FLAGS


def _last_layer_rows(preds, kind):
  # The heads read the last layer at [CLS] (and the masked positions) only, so the encoder runs
  # its queries, output projection and feed-forward there alone (models.py); keys and values
  # still cover every token.
  return preds + 1 if kind == "pretraining" else 1


def step_flops(config, seq, batch, preds, kind, num_labels=2):
  layers, h, _, inter = pretraining_bench.CONFIGS[config]
  tokens = seq * batch
  rows = batch * _last_layer_rows(preds, kind)
  per_layer = tokens * (8 * h * h + 4 * h * inter + 4 * seq * h)
  last = tokens * 4 * h * h + rows * (4 * h * h + 4 * h * inter + 4 * seq * h)
  fwd = (layers - 1) * per_layer + last + batch * 2 * h * h  # + pooler
  if kind == "pretraining":
    fwd += batch * preds * (2 * h * h + 2 * h * pretraining_bench.VOCAB) + batch * 2 * h * 2
  else:
    fwd += batch * 2 * h * num_labels
  return 3 * fwd


def matmul_shapes(config, seq, batch, preds, kind):
  """(m, k, n, count) of the forward matmuls of one step (batched ones as count x [m,k]x[k,n])."""
  layers, h, heads, inter = pretraining_bench.CONFIGS[config]
  t = seq * batch
  d = h // heads
  q = _last_layer_rows(preds, kind)
  full = layers - 1
  shapes = [(t, h, h, 4 * full), (t, h, inter, full), (t, inter, h, full),
            (seq, d, seq, batch * heads * full), (seq, seq, d, batch * heads * full),
            # the last layer: keys and values of every token, the rest at q rows per sequence
            (t, h, h, 2), (batch * q, h, h, 2), (batch * q, h, inter, 1), (batch * q, inter, h, 1),
            (q, d, seq, batch * heads), (q, seq, d, batch * heads)]
  if kind == "pretraining":
    shapes += [(batch * preds, h, h, 1), (batch * preds, h, pretraining_bench.VOCAB, 1)]
  return shapes


def time_fn(fn, reps):
  fn()
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return min(times), statistics.median(times)


def peak_flops():
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  n = FLAGS.peak_n
  a = tf.random.normal([n, n])
  b = tf.random.normal([n, n])
  mm = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
  best, _ = time_fn(lambda: float(mm()), FLAGS.peak_reps)
  return 2 * n ** 3 / best


def matmul_time(shapes, reps=5):
  """Seconds of all forward + backward matmuls of the step, each shape timed alone."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  total = 0.0
  for m, k, n, count in shapes:
    # forward [m,k]x[k,n]; backward dX = [m,n]x[n,k], dW = [k,m]x[m,n]
    for (p, q, r) in ((m, k, n), (m, n, k), (k, m, n)):
      batch = min(count, 64)
      a = tf.random.normal([batch, p, q])
      b = tf.random.normal([batch, q, r])
      fn = tf.function(lambda a=a, b=b: tf.reduce_sum(tf.matmul(a, b)))
      best, _ = time_fn(lambda fn=fn: float(fn()), reps)
      total += best * count / batch
  return total


def build_finetuning(config, batch, jit):
  """run(n): n optimizer steps of the classifier (GR's run_classifier step)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tempfile  # pylint: disable=import-outside-toplevel
  from official_bert import configs, models, optimization  # pylint: disable=import-outside-toplevel
  from official_bert.tasks import classification  # pylint: disable=import-outside-toplevel
  from official_bert.training import loop  # pylint: disable=import-outside-toplevel
  layers, hidden, heads, inter = pretraining_bench.CONFIGS[config]
  cfg = configs.BertConfig(vocab_size=pretraining_bench.VOCAB, hidden_size=hidden,
                           num_hidden_layers=layers, num_attention_heads=heads,
                           intermediate_size=inter, max_position_embeddings=512,
                           type_vocab_size=2)
  strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
  task = loop.Task(build_model=lambda: models.BertClassifier(cfg, 2),
                   loss_fn=classification.classification_loss)
  settings = loop.RunSettings(output_dir=tempfile.mkdtemp(), num_train_steps=10**6,
                              train_batch_size=FLAGS.batch_size, jit_compile=jit)
  with strategy.scope():
    model = task.build_model()
    model.build()
    opt = optimization.create_optimizer(5e-5, 10**6, 100)
    opt.build(model.trainable_variables)
  feats = {k: batch[k] for k in ("input_ids", "input_mask", "segment_ids")}
  feats["label_ids"] = batch["next_sentence_labels"][:, 0]
  ds = tf.data.Dataset.from_tensors(feats).repeat()
  it = iter(strategy.distribute_datasets_from_function(lambda ctx: ds))
  train_loop = loop._make_train_loop(task, strategy, model, opt, settings, ds.element_spec)  # pylint: disable=protected-access
  return lambda n: float(train_loop(it, tf.constant(n, tf.int32))["loss"]), model, opt


def optimizer_time(model, opt, reps=5):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from official_bert import optimization  # pylint: disable=import-outside-toplevel
  tvars = model.trainable_variables
  grads = [tf.zeros_like(v) for v in tvars]
  apply = tf.function(lambda: optimization.apply_reduced_gradients(opt, grads, tvars))
  best, _ = time_fn(lambda: (apply(), float(tf.reduce_sum(tvars[0]))), reps)
  return best


def main(_):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  peak = peak_flops()
  print(f"peak float32 matmul ({FLAGS.peak_n}^2, {os.cpu_count()} cores, "
        f"threads intra={tf.config.threading.get_intra_op_parallelism_threads() or 'default'}): "
        f"{peak / 1e9:.1f} GFLOP/s")
  seq, bsz, preds = FLAGS.seq_len, FLAGS.batch_size, FLAGS.max_predictions_per_seq
  batch = pretraining_bench.make_batch(bsz, seq, preds)
  results = []
  for config in FLAGS.configs:
    FLAGS.config = config  # build_ours reads it
    for kind in ("pretraining", "finetuning"):
      if kind == "pretraining":
        run = pretraining_bench.build_ours(batch, jit=FLAGS.jit)
        model = opt = None
      else:
        run, model, opt = build_finetuning(config, batch, FLAGS.jit)
      run(FLAGS.warmup_steps)
      times = []
      for _ in range(FLAGS.rounds):
        t = time.perf_counter()
        run(FLAGS.steps)
        times.append((time.perf_counter() - t) / FLAGS.steps)
      step = statistics.median(times)
      flops = step_flops(config, seq, bsz, preds, kind)
      mm = matmul_time(matmul_shapes(config, seq, bsz, preds, kind))
      opt_s = optimizer_time(model, opt) if model is not None else float("nan")
      frac = flops / step / peak
      results.append((config, kind, frac))
      print(f"{config:5s} {kind:11s} step {step * 1e3:7.1f} ms [{min(times) * 1e3:.1f}-"
            f"{max(times) * 1e3:.1f}]  {flops / 1e9:6.1f} GFLOP  {flops / step / 1e9:6.1f} "
            f"GFLOP/s = {100 * frac:4.1f}% of peak | matmul_only {mm * 1e3:6.1f} ms "
            f"({100 * mm / step:4.1f}% of step; these shapes reach "
            f"{100 * flops / mm / peak:4.1f}% of peak)"
            + (f" optimizer {opt_s * 1e3:5.1f} ms" if model is not None else ""), flush=True)
  print(" ".join(f"{c}_{k}_fraction_of_peak={f:.2f}" for c, k, f in results))


if __name__ == "__main__":
  app.run(main)
