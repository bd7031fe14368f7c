"""Pre-training train-step throughput: ours vs keras-hub's BertMaskedLM (and HF if torch is there).

  python benchmarks/pretraining_bench.py --config=tiny --seq_len=128 --batch_size=32

Same config, batch and data for everyone (one synthetic batch of GR-schema features, repeated),
one process, measured after warm-up. Ours: the shared training loop (MLM + NSP, GR's
AdamWeightDecay, steps_per_loop steps per host call), with and without jit_compile. keras-hub:
BertMaskedLM (MLM only) with `fit`, AdamW, its default jit_compile. HF: BertForPreTraining
(MLM + NSP) with torch AdamW on CPU. Last line: vs_keras_hub=<ours best / keras-hub>.
"""

import os
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=wrong-import-position

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
flags.DEFINE_integer("steps", 20, "Measured steps per candidate.")
flags.DEFINE_integer("warmup_steps", 3, "Unmeasured steps (tracing, XLA compile).")
flags.DEFINE_bool("hf", True, "Also measure HF transformers' BertForPreTraining if torch exists "
                  "(in a subprocess: torch and TF in one process crash here).")
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


def bench_ours(batch, jit):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from official_bert import configs, optimization  # pylint: disable=import-outside-toplevel
  from official_bert.training import loop, pretraining  # pylint: disable=import-outside-toplevel
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
  ds = strategy.distribute_datasets_from_function(
      lambda ctx: tf.data.Dataset.from_tensors(batch).repeat())
  it = iter(ds)
  train_loop = loop._make_train_loop(task, strategy, model, opt, settings)  # pylint: disable=protected-access
  float(train_loop(it, tf.constant(FLAGS.warmup_steps))["loss"])
  start = time.time()
  float(train_loop(it, tf.constant(FLAGS.steps))["loss"])
  return FLAGS.steps * FLAGS.batch_size / (time.time() - start)


def bench_keras_hub(batch):
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
  model.fit(ds, steps_per_epoch=FLAGS.warmup_steps, epochs=1, verbose=0)
  start = time.time()
  model.fit(ds, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0)
  return FLAGS.steps * FLAGS.batch_size / (time.time() - start)


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
  start = time.time()
  for _ in range(FLAGS.steps):
    step()
  return FLAGS.steps * FLAGS.batch_size / (time.time() - start)


def hf_in_subprocess():
  import subprocess  # pylint: disable=import-outside-toplevel
  argv = [sys.executable, os.path.abspath(__file__), "--hf_only"] + [
      f"--{k}={getattr(FLAGS, k)}" for k in ("config", "seq_len", "max_predictions_per_seq",
                                             "batch_size", "steps", "warmup_steps")]
  proc = subprocess.run(argv, capture_output=True, text=True, check=False)
  for line in proc.stdout.splitlines():
    if line.startswith("hf="):
      return float(line[3:])
  raise ImportError(f"HF run failed: {proc.stderr.strip().splitlines()[-1:]}")


def main(_):
  logging.set_verbosity(logging.WARNING)
  batch = make_batch(FLAGS.batch_size, FLAGS.seq_len, FLAGS.max_predictions_per_seq)
  if FLAGS.hf_only:
    print(f"hf={bench_hf(batch)}")
    return
  print(f"config={FLAGS.config} seq_len={FLAGS.seq_len} batch={FLAGS.batch_size} "
        f"steps={FLAGS.steps} (examples/s, train step incl. optimizer)")
  results = {}
  results["ours"] = bench_ours(batch, jit=False)
  print(f"ours (no jit)           {results['ours']:9.1f}")
  results["ours_jit"] = bench_ours(batch, jit=True)
  print(f"ours (jit_compile)      {results['ours_jit']:9.1f}")
  results["keras_hub"] = bench_keras_hub(batch)
  print(f"keras-hub BertMaskedLM  {results['keras_hub']:9.1f}")
  if FLAGS.hf:
    try:
      results["hf"] = hf_in_subprocess()
      print(f"HF BertForPreTraining   {results['hf']:9.1f}")
    except ImportError as e:
      print(f"HF skipped: {e}")
  best = max(results["ours"], results["ours_jit"])
  print(f"jit_speedup={results['ours_jit'] / results['ours']:.2f}")
  if "hf" in results:
    print(f"vs_hf={best / results['hf']:.2f}")
  print(f"vs_keras_hub={best / results['keras_hub']:.2f}")


if __name__ == "__main__":
  app.run(main)
