"""Quality parity of pre-training: ours vs keras-hub's BertMaskedLM, same data, steps and start.

  python benchmarks/pretraining_quality_parity.py --train_steps=300 --batch_size=32

A tiny BERT (2 layers, hidden 128, 2 heads, intermediate 512, the uncased 30,522 vocabulary) is
pre-trained twice on the same TFRecords, read in the same order (no shuffling; the records are
already shuffled by create_pretraining_data), for the same steps and batch, from the same
initial weights (ours are copied into keras-hub's backbone and MLM head):
  * ours: run_pretraining's task on the shared loop, MLM + NSP (GR), GR's AdamWeightDecay;
  * keras-hub: BertMaskedLM.fit, MLM only (keras-hub has no NSP head).
Optimizer: by default both use GR's AdamWeightDecay from official_bert.optimization (it is a
Keras 3 optimizer, so keras-hub's `fit` takes it) with GR's schedule (linear warmup, linear decay
to 0), weight decay 0.01 off for LayerNorm and biases, global-norm clip 1.0: the optimizer is then
no difference. --keras_hub_optimizer=adamw gives keras-hub Keras AdamW with the same settings
instead (it also corrects the moments' bias and decays as w -= lr*wd*w before the Adam step).
Differences left: ours also trains NSP (its gradient shares the encoder and the clip norm);
keras-hub's loss divides the weighted sum by B*P (Keras sum_over_batch_size), GR's by the sum of
masked_lm_weights; keras-hub's MLM-head LayerNorm epsilon is 1e-5 (GR 1e-12); dropout draws
differ. Both are scored with the same code on held-out records (another Wikipedia file):
masked-LM accuracy weighted by masked_lm_weights, as GR's metric_fn.
Last line: within_1_point=<True|False>.

Data (made on first use in --work_dir with this repo's data_prep scripts): train from
wikipedia_sample/wiki_00..02, eval from wiki_03, max_seq_length 128, max_predictions_per_seq 20.
"""

import os
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging

import keras
import numpy as np
import tensorflow as tf

from official_bert import checkpoints, configs, optimization
from official_bert.data import pretraining as pretraining_data
from official_bert.tasks import pretraining
from official_bert.training import loop

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string("work_dir", "/tmp/pretraining_quality_parity", "Data and checkpoints.")
flags.DEFINE_integer("train_steps", 300, "Optimizer steps for each model.")
flags.DEFINE_integer("warmup_steps", 30, "Linear warmup steps.")
flags.DEFINE_integer("batch_size", 32, "Train batch size.")
flags.DEFINE_float("learning_rate", 1e-3, "Peak learning rate.")
flags.DEFINE_integer("eval_batches", 40, "Held-out batches of --batch_size scored.")
flags.DEFINE_integer("dupe_factor", 1, "create_pretraining_data's dupe_factor for the training "
                     "records (more distinct masks for longer runs).")
flags.DEFINE_integer("seed", 12345, "Initialisation / dropout seed.")
flags.DEFINE_enum("keras_hub_optimizer", "gr", ["gr", "adamw"],
                  "keras-hub's optimizer: `gr` = our GR AdamWeightDecay (a Keras 3 optimizer, so "
                  "the optimizer is not a difference), `adamw` = Keras AdamW with GR's settings.")
FLAGS = flags.FLAGS

SEQ, PREDS = 128, 20


def _data_dir():
  return os.environ.get("OFFICIAL_BERT_DATA", os.path.join(os.path.dirname(REPO), "shared", "data"))


def make_data(work_dir):
  """train.tfrecord / eval.tfrecord from the Wikipedia sample, made once per --dupe_factor."""
  dupe = FLAGS.dupe_factor
  files = {"train": os.path.join(work_dir, "train.tfrecord" if dupe == 1 else
                                 f"train_dupe{dupe}.tfrecord"),
           "eval": os.path.join(work_dir, "eval.tfrecord")}
  if all(tf.io.gfile.exists(f) for f in files.values()):
    return files
  tf.io.gfile.makedirs(work_dir)
  wiki = os.path.join(_data_dir(), "wikipedia_sample")
  vocab = os.path.join(_data_dir(), "vocab", "bert-base-uncased-vocab.txt")
  py = sys.executable
  for split, pattern, seed, dupe_factor in (("train", "wiki_0[012]", 12345, dupe),
                                            ("eval", "wiki_03", 7, 1)):
    if tf.io.gfile.exists(files[split]):
      continue
    text = os.path.join(work_dir, f"{split}.txt")
    subprocess.run([py, os.path.join(REPO, "data_prep/prepare_corpus.py"),
                    "--input_format=wikiextractor", f"--input_file={wiki}/{pattern}",
                    f"--output_file={text}"], check=True)
    subprocess.run([py, os.path.join(REPO, "data_prep/create_pretraining_data.py"),
                    f"--input_file={text}", f"--output_file={files[split]}",
                    f"--vocab_file={vocab}", "--do_lower_case=True", f"--max_seq_length={SEQ}",
                    f"--max_predictions_per_seq={PREDS}", f"--dupe_factor={dupe_factor}",
                    f"--random_seed={seed}"], check=True)
  return files


def dataset(path, batch, repeat):
  """Records in file order, parsed to GR's features, static batches."""
  ds = tf.data.TFRecordDataset(path).map(
      lambda r: pretraining_data.parse_example(r, SEQ, PREDS))
  if repeat:
    ds = ds.repeat()
  return ds.batch(batch, drop_remainder=True)


def mlm_accuracy(logits_fn, eval_file):
  """GR's eval masked_lm_accuracy (weighted by masked_lm_weights) over the held-out batches."""
  correct = total = 0.0
  for features in dataset(eval_file, FLAGS.batch_size, False).take(FLAGS.eval_batches):
    pred = np.argmax(logits_fn(features), -1)                            # [B, P]
    w = features["masked_lm_weights"].numpy()
    correct += float(np.sum((pred == features["masked_lm_ids"].numpy()) * w))
    total += float(np.sum(w))
  return correct / total


def train_ours(cfg, files):
  """Returns (model, initial GR-named weights, seconds)."""
  keras.utils.set_random_seed(FLAGS.seed)
  task = pretraining.pretraining_task(cfg)
  initial = {}

  def init_fn(model):  # a fresh start: remember the initial weights for keras-hub
    initial.update(checkpoints.get_weights(model))

  out = os.path.join(FLAGS.work_dir, f"ours_{time.strftime('%Y%m%d_%H%M%S')}")
  settings = loop.RunSettings(output_dir=out, num_train_steps=FLAGS.train_steps,
                              train_batch_size=FLAGS.batch_size, steps_per_loop=50,
                              save_checkpoints_steps=FLAGS.train_steps, write_summaries=False)
  start = time.time()
  model = loop.train(
      task, tf.distribute.OneDeviceStrategy("/cpu:0"),
      lambda ctx: dataset(files["train"], FLAGS.batch_size, True),
      optimizer_fn=lambda: optimization.create_optimizer(
          FLAGS.learning_rate, FLAGS.train_steps, FLAGS.warmup_steps),
      settings=settings, init_fn=init_fn)
  return model, initial, time.time() - start


def keras_hub_inputs(features):
  return dict(token_ids=features["input_ids"], padding_mask=features["input_mask"],
              segment_ids=features["segment_ids"], mask_positions=features["masked_lm_positions"])


def initial_logits(cfg, initial, features):
  """Our BertPretrainer's MLM logits with the `initial` weights."""
  model = pretraining.pretraining_task(cfg).build_model()
  checkpoints.assign_weights(model, initial)
  return model(features, training=False)["masked_lm_logits"].numpy()


def train_keras_hub(cfg, files, initial):
  """BertMaskedLM started from `initial` (our GR-named weights); returns (model, seconds)."""
  import keras_hub  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(FLAGS.seed)
  backbone = keras_hub.models.BertBackbone(
      vocabulary_size=cfg.vocab_size, num_layers=cfg.num_hidden_layers,
      num_heads=cfg.num_attention_heads, hidden_dim=cfg.hidden_size,
      intermediate_dim=cfg.intermediate_size, dropout=cfg.hidden_dropout_prob,
      max_sequence_length=cfg.max_position_embeddings, num_segments=cfg.type_vocab_size)
  model = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
  model(keras_hub_inputs(next(iter(dataset(files["train"], 2, False)))))  # build the head
  by_path = {v.path: v for v in model.weights}
  pairs = [(gr, kh, shape) for gr, kh, shape in checkpoints._keras_hub_rules(cfg)]  # pylint: disable=protected-access
  pairs += [("cls/predictions/transform/dense/kernel", "mlm_head/intermediate_dense/kernel", None),
            ("cls/predictions/transform/dense/bias", "mlm_head/intermediate_dense/bias", None),
            ("cls/predictions/transform/LayerNorm/gamma",
             "mlm_head/intermediate_layer_norm/gamma", None),
            ("cls/predictions/transform/LayerNorm/beta",
             "mlm_head/intermediate_layer_norm/beta", None),
            ("cls/predictions/output_bias", "mlm_head/output_bias", None)]
  for gr, kh, shape in pairs:
    by_path[kh].assign(initial[gr].reshape(shape) if shape else initial[gr])
  # Same start: MLM logits of the copied model vs ours before training (same weights).
  first = next(iter(dataset(files["eval"], FLAGS.batch_size, False)))
  init_logits = model(keras_hub_inputs(first), training=False).numpy()
  init_diff = float(np.max(np.abs(init_logits - initial_logits(cfg, initial, first))))
  schedule = optimization.WarmupPolynomialDecay(
      FLAGS.learning_rate, FLAGS.train_steps, FLAGS.warmup_steps)
  if FLAGS.keras_hub_optimizer == "gr":
    opt = optimization.AdamWeightDecay(schedule)  # decay off for LayerNorm / bias paths
  else:
    opt = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=0.01, beta_1=0.9,
                                 beta_2=0.999, epsilon=1e-6, global_clipnorm=1.0)
    opt.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])  # LayerNorm, biases
  model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                weighted_metrics=[keras.metrics.SparseCategoricalAccuracy()])
  ds = dataset(files["train"], FLAGS.batch_size, True).map(
      lambda f: (keras_hub_inputs(f), f["masked_lm_ids"], f["masked_lm_weights"]))
  start = time.time()
  model.fit(ds, steps_per_epoch=FLAGS.train_steps, epochs=1, verbose=0)
  return model, time.time() - start, init_diff


def main(_):
  logging.set_verbosity(logging.INFO)
  files = make_data(FLAGS.work_dir)
  cfg = configs.BertConfig(vocab_size=30522, hidden_size=128, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=512,
                           max_position_embeddings=512, type_vocab_size=2)
  ours, initial, t_ours = train_ours(cfg, files)
  acc_ours = mlm_accuracy(
      lambda f: ours(f, training=False)["masked_lm_logits"].numpy(), files["eval"])
  kh, t_kh, init_diff = train_keras_hub(cfg, files, initial)
  acc_kh = mlm_accuracy(lambda f: kh(keras_hub_inputs(f), training=False).numpy(), files["eval"])
  diff = 100.0 * (acc_ours - acc_kh)
  print(f"steps={FLAGS.train_steps} batch={FLAGS.batch_size} lr={FLAGS.learning_rate} "
        f"warmup={FLAGS.warmup_steps} eval_examples={FLAGS.eval_batches * FLAGS.batch_size} "
        f"keras_hub_optimizer={FLAGS.keras_hub_optimizer}")
  print(f"initial_mlm_logits_max_abs_diff={init_diff:.2e}")
  print(f"ours_mlm_accuracy={acc_ours:.4f} (train {t_ours:.0f}s)")
  print(f"keras_hub_mlm_accuracy={acc_kh:.4f} (train {t_kh:.0f}s)")
  print(f"difference_points={diff:+.2f}")
  print(f"within_1_point={abs(diff) <= 1.0}")


if __name__ == "__main__":
  app.run(main)
