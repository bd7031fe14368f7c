"""Pre-training train-step throughput: ours vs keras-hub's BertMaskedLM (and HF if torch is there).

  python benchmarks/pretraining_bench.py --config=tiny --seq_len=128 --batch_size=32

Same config, batch and data for everyone (one synthetic batch of GR-schema features, repeated),
one process. Ours: the shared training loop's step (MLM + NSP, GR's AdamWeightDecay with its
global-norm clip, steps_per_loop steps per host call), with and without jit_compile. keras-hub:
BertMaskedLM (MLM only) compiled as for `fit` (AdamW, global_clipnorm 1.0, its default
jit_compile, which is off on CPU), stepped through its own `train_function`.

Robust on a shared, loaded machine: after warm-up (tracing, XLA compile) the candidates run in
`--rounds` alternating rounds (the order rotates every round), each round `--steps` steps per
candidate, timed by wall clock and by process CPU time. The ratios reported are medians of the
per-round ratios, so load that comes and goes hits both sides of each ratio alike. With --hf,
HF (BertForPreTraining, torch AdamW) runs once in a subprocess (torch and TF in one process crash
here), so its figure is not interleaved and suffers from load (off by default). Last line: vs_keras_hub=<median per-round wall-time
ratio, ours (best variant) / keras-hub>.
"""

import os
import statistics
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging

import numpy as np

CONFIGS = {  # (layers, hidden, heads, intermediate), BERT's official small-model grid + base
    "tiny": (2, 128, 2, 512),
    "mini": (4, 256, 4, 1024),
    "small": (4, 512, 8, 2048),
    "base": (12, 768, 12, 3072),
}
VOCAB = 30522

flags.DEFINE_enum("config", "tiny", list(CONFIGS), "Model size.")
flags.DEFINE_integer("seq_len", 128, "max_seq_length.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked positions per sequence.")
flags.DEFINE_integer("batch_size", 32, "Global batch size.")
flags.DEFINE_integer("steps", 2, "Measured steps per candidate per round.")
flags.DEFINE_integer("rounds", 15, "Alternating measurement rounds.")
flags.DEFINE_integer("warmup_steps", 3, "Unmeasured steps per candidate (tracing, XLA compile).")
flags.DEFINE_bool("hf", False, "Also measure HF transformers' BertForPreTraining if torch exists "
                  "(once, in a subprocess: torch and TF in one process crash here).")
flags.DEFINE_bool("hf_only", False, "Internal: measure HF only and print the figure.")
FLAGS = flags.FLAGS


def make_batch(batch, seq, preds, seed=0):
  rng = np.random.default_rng(seed)
  positions = np.sort(np.stack([rng.choice(np.arange(1, seq), preds, replace=False)
                                for _ in range(batch)]), axis=1)
  return dict(
      input_ids=rng.integers(1000, VOCAB, (batch, seq)).astype(np.int32),
      input_mask=np.ones((batch, seq), np.int32),
      segment_ids=np.concatenate([np.zeros((batch, seq // 2)), np.ones((batch, seq - seq // 2))],
                                 1).astype(np.int32),
      masked_lm_positions=positions.astype(np.int32),
      masked_lm_ids=rng.integers(1000, VOCAB, (batch, preds)).astype(np.int32),
      masked_lm_weights=np.ones((batch, preds), np.float32),
      next_sentence_labels=rng.integers(0, 2, (batch, 1)).astype(np.int32))


def build_ours(batch, jit):
  """Returns run(n): n optimizer steps of our training loop, synchronised."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from official_bert import configs, optimization  # pylint: disable=import-outside-toplevel
  from official_bert.tasks import pretraining  # pylint: disable=import-outside-toplevel
  from official_bert.training import loop  # pylint: disable=import-outside-toplevel
  layers, hidden, heads, inter = CONFIGS[FLAGS.config]
  cfg = configs.BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers,
                           num_attention_heads=heads, intermediate_size=inter,
                           max_position_embeddings=max(512, FLAGS.seq_len), type_vocab_size=2)
  strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
  task = pretraining.pretraining_task(cfg)
  settings = loop.RunSettings(output_dir=tempfile.mkdtemp(), num_train_steps=10**6,
                              train_batch_size=FLAGS.batch_size, jit_compile=jit)
  with strategy.scope():
    model = task.build_model()
    opt = optimization.create_optimizer(1e-4, 10**6, 100)
    opt.build(model.trainable_variables)
  data = tf.data.Dataset.from_tensors(batch).repeat()
  it = iter(strategy.distribute_datasets_from_function(lambda ctx: data))
  train_loop = loop._make_train_loop(task, strategy, model, opt, settings, data.element_spec)  # pylint: disable=protected-access

  def run(n):
    float(train_loop(it, tf.constant(n, tf.int32))["loss"])
  return run


def build_keras_hub(batch):
  """Returns run(n): n steps of BertMaskedLM's compiled train_function (what `fit` calls)."""
  import keras  # pylint: disable=import-outside-toplevel
  import keras_hub  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  layers, hidden, heads, inter = CONFIGS[FLAGS.config]
  backbone = keras_hub.models.BertBackbone(
      vocabulary_size=VOCAB, num_layers=layers, num_heads=heads, hidden_dim=hidden,
      intermediate_dim=inter, max_sequence_length=max(512, FLAGS.seq_len), num_segments=2)
  model = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
  model.compile(optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.01, global_clipnorm=1.0),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                weighted_metrics=[keras.metrics.SparseCategoricalAccuracy()])
  x = dict(token_ids=batch["input_ids"], padding_mask=batch["input_mask"],
           segment_ids=batch["segment_ids"], mask_positions=batch["masked_lm_positions"])
  ds = tf.data.Dataset.from_tensors(
      (x, batch["masked_lm_ids"], batch["masked_lm_weights"])).repeat()
  model.fit(ds, steps_per_epoch=1, epochs=1, verbose=0)  # builds optimizer + train_function
  train_function = model.make_train_function() or model.train_function
  it = iter(ds)
  var = model.trainable_variables[0]

  def run(n):
    for _ in range(n):
      train_function(it)
    var.numpy()  # synchronise
  return run


def bench_hf(batch):
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  layers, hidden, heads, inter = CONFIGS[FLAGS.config]
  cfg = transformers.BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers,
                                num_attention_heads=heads, intermediate_size=inter,
                                max_position_embeddings=max(512, FLAGS.seq_len))
  model = transformers.BertForPreTraining(cfg)
  model.train()
  opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
  labels = np.full(batch["input_ids"].shape, -100, np.int64)
  for i, (pos, ids) in enumerate(zip(batch["masked_lm_positions"], batch["masked_lm_ids"])):
    labels[i, pos] = ids
  inputs = dict(input_ids=torch.tensor(batch["input_ids"], dtype=torch.long),
                attention_mask=torch.tensor(batch["input_mask"], dtype=torch.long),
                token_type_ids=torch.tensor(batch["segment_ids"], dtype=torch.long),
                labels=torch.tensor(labels),
                next_sentence_label=torch.tensor(batch["next_sentence_labels"][:, 0],
                                                 dtype=torch.long))

  def step():
    opt.zero_grad()
    loss = model(**inputs).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()

  for _ in range(FLAGS.warmup_steps):
    step()
  n = FLAGS.steps * FLAGS.rounds
  start = time.time()
  for _ in range(n):
    step()
  return n * FLAGS.batch_size / (time.time() - start)


def hf_in_subprocess():
  import subprocess  # pylint: disable=import-outside-toplevel
  argv = [sys.executable, os.path.abspath(__file__), "--hf_only"] + [
      f"--{k}={getattr(FLAGS, k)}" for k in ("config", "seq_len", "max_predictions_per_seq",
                                             "batch_size", "steps", "rounds", "warmup_steps")]
  proc = subprocess.run(argv, capture_output=True, text=True, check=False)
  for line in proc.stdout.splitlines():
    if line.startswith("hf="):
      return float(line[3:])
  raise ImportError(f"HF run failed: {proc.stderr.strip().splitlines()[-1:]}")


def measure(candidates, steps, rounds):
  """{name: [(wall examples/s, cpu examples/s) per round]}, candidates alternating."""
  names = list(candidates)
  out = {name: [] for name in names}
  for r in range(rounds):
    order = names[r % len(names):] + names[:r % len(names)]  # rotate: no fixed position
    for name in order:
      wall, cpu = time.perf_counter(), time.process_time()
      candidates[name](steps)
      wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
      n = steps * FLAGS.batch_size
      out[name].append((n / wall, n / max(cpu, 1e-9)))
    logging.warning("round %d: %s", r, " ".join(f"{k}={v[-1][0]:.1f}" for k, v in out.items()))
  return out


def main(_):
  logging.set_verbosity(logging.WARNING)
  batch = make_batch(FLAGS.batch_size, FLAGS.seq_len, FLAGS.max_predictions_per_seq)
  if FLAGS.hf_only:
    print(f"hf={bench_hf(batch)}")
    return
  print(f"config={FLAGS.config} seq_len={FLAGS.seq_len} batch={FLAGS.batch_size} "
        f"rounds={FLAGS.rounds} x steps={FLAGS.steps} "
        f"(examples/s per train step incl. optimizer; median over rounds)")
  candidates = {"ours": build_ours(batch, jit=False), "ours_jit": build_ours(batch, jit=True),
                "keras_hub": build_keras_hub(batch)}
  for run in candidates.values():
    run(FLAGS.warmup_steps)
  res = measure(candidates, FLAGS.steps, FLAGS.rounds)
  med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
         for k, v in res.items()}
  labels = {"ours": "ours (no jit)", "ours_jit": "ours (jit_compile)",
            "keras_hub": "keras-hub BertMaskedLM"}
  print(f"{'':24s} {'wall ex/s':>10s} {'cpu ex/s':>10s}")
  for k, (w, c) in med.items():
    print(f"{labels[k]:24s} {w:10.1f} {c:10.1f}")

  def ratio(a, b, i):  # median of per-round ratios; i=0 wall, 1 cpu
    return statistics.median(x[i] / y[i] for x, y in zip(res[a], res[b]))

  best = max(("ours", "ours_jit"), key=lambda k: med[k][0])
  if FLAGS.hf:
    try:
      hf = hf_in_subprocess()
      print(f"{'HF BertForPreTraining':24s} {hf:10.1f}   (once, not interleaved)")
      print(f"vs_hf={med[best][0] / hf:.2f}")
    except ImportError as e:
      print(f"HF skipped: {e}")
  print(f"jit_speedup={ratio('ours_jit', 'ours', 0):.2f} (cpu {ratio('ours_jit', 'ours', 1):.2f})")
  print(f"best_ours={best}")
  ratios = [x[0] / y[0] for x, y in zip(res[best], res["keras_hub"])]
  print("per_round_vs_keras_hub=" + ",".join(f"{r:.2f}" for r in ratios))
  print(f"vs_keras_hub_cpu={ratio(best, 'keras_hub', 1):.2f}")
  print(f"vs_keras_hub={ratio(best, 'keras_hub', 0):.2f}")


if __name__ == "__main__":
  app.run(main)
