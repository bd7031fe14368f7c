r"""Serving speed: our exported SavedModel (raw strings in) vs HF pipeline("text-classification").

  python benchmarks/serving_bench.py --data_dir=../shared/data/glue/MRPC

Model: an MRPC classifier on the real all-MiniLM-L6-v2 encoder with a seeded random head (speed
does not depend on the head's values), written once as
  * our SavedModel, with run_scripts/export_savedmodel.export (tokenizer in the graph), and
  * HF files (checkpoints.write_hf + the package's tokenizer files), loaded by
    BertForSequenceClassification and served by pipeline("text-classification", top_k=None).
Variants of ours (same weights; each loaded from its own SavedModel in a fresh process):
  saved       what export_savedmodel writes (each batch cut to its longest request);
  saved_xla   export_savedmodel --jit_compile: the model under XLA, lengths rounded up to a
              multiple of --xla_bucket (one compile per batch size and bucket);
  tflite_fp32 / tflite_int8  the encoder + head converted to TFLite (float, dynamic-range int8),
              fed by a SavedModel of the same in-graph tokenizer, cut to the batch's longest request.
Requests: the first pairs of MRPC dev.tsv. Batch 1: --requests calls one pair each, latency
p50/p99 (ms). Batch 32: --batches calls of 32 pairs, pairs/s. Startup is not timed. Every
variant's probabilities on the first 256 pairs must be within --tolerance of `saved` (asserted;
int8 is reported, with how many labels it keeps, and excluded from the verdict if it is not).
Rounds alternate ours/HF (each side in its own process: torch and TF crash in one process). One
line per variant gives its ratios to HF; last line:
`vs_hf_throughput=<x> vs_hf_p50=<y>` for the best float variant (HF p50 / ours p50: > 1 = ours
faster).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

flags.DEFINE_string("data_dir", None, "GLUE MRPC directory (dev.tsv).")
flags.DEFINE_integer("max_seq_length", 128, "max_seq_length of the export.")
flags.DEFINE_integer("requests", 200, "Batch-1 requests per measurement.")
flags.DEFINE_integer("batches", 12, "Batch-32 requests per measurement.")
flags.DEFINE_integer("rounds", 3, "Alternating rounds.")
flags.DEFINE_integer("xla_bucket", 16, "saved_xla: lengths rounded up to a multiple of this.")
flags.DEFINE_float("tolerance", 1e-3, "Max |probability difference| to the float SavedModel.")
flags.DEFINE_list("variants", ["saved", "saved_xla", "tflite_fp32", "tflite_int8"],
                  "Our variants to measure.")
flags.DEFINE_string("work_dir", None, "Where the exports go (default: a temporary directory).")
flags.DEFINE_string("child", None, "Internal: setup | hf | <variant>.")
FLAGS = flags.FLAGS

_CHECK = 256  # pairs whose probabilities (and labels) are compared


def _pairs(n):
  with open(os.path.join(FLAGS.data_dir, "dev.tsv"), encoding="utf-8-sig") as f:
    rows = [line.rstrip("\n").split("\t") for line in f][1:]
  return [(r[3], r[4]) for r in rows[:n]]


# ----------------------------------------------------------------------------- setup (TF)


def _features_module(preprocessor):
  """A tf.Module with features(sentence, sentence2): the tokenizer alone, for TFLite."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  class Features(tf.Module):

    def __init__(self):
      super().__init__()
      self.preprocessor = preprocessor

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentence"),
                                  tf.TensorSpec([None], tf.string, name="sentence2")])
    def features(self, sentence, sentence2):
      features = self.preprocessor([sentence, sentence2])
      length = tf.reduce_max(tf.reduce_sum(features["input_mask"], axis=1))
      return {k: v[:, :length] for k, v in features.items()}

  return Features()


def setup(work):
  """Writes work/{saved,saved_xla,features}/ SavedModels, TFLite files and work/hf/."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import keras  # pylint: disable=import-outside-toplevel
  # pylint: disable=import-outside-toplevel
  from official_bert import checkpoints, configs, models, serving
  from official_bert.layers import preprocessing  # pylint: disable=import-outside-toplevel
  from official_bert.training import loop  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(0)
  files = checkpoints.minilm_files()
  config = configs.BertConfig.from_json_file(files["config"])
  model = models.BertClassifier(config, 2, pooling="cls")
  model.build()
  checkpoints.restore_encoder(model, files["dir"])
  # Ours, as the exporter writes it (run by its command line, from a checkpoint of the model).
  prefix = loop.build_checkpoint(model).write(os.path.join(work, "ckpt", "model.ckpt-0"))
  done = lambda name: os.path.exists(os.path.join(work, name))  # a re-run skips what exists
  for variant, extra in (("saved", []), ("saved_xla", ["--jit_compile",
                                                       f"--xla_bucket={FLAGS.xla_bucket}"])):
    if not done(variant):
      subprocess.run([sys.executable, os.path.join(_ROOT, "run_scripts", "export_savedmodel.py"),
                      "--task_name=MRPC", f"--vocab_file={files['vocab']}",
                      f"--bert_config_file={files['config']}", f"--init_checkpoint={prefix}",
                      f"--max_seq_length={FLAGS.max_seq_length}", "--classifier_pooling=cls",
                      f"--export_dir={os.path.join(work, variant)}", *extra], check=True,
                     env=dict(os.environ, PYTHONPATH=_ROOT))
  if not done("features"):
    module = _features_module(
        preprocessing.BertPreprocessor(files["vocab"], True, FLAGS.max_seq_length))
    tf.saved_model.save(module, os.path.join(work, "features"),
                        signatures={"features": module.features})
  # TFLite: encoder + head on int32 features of any [batch, length].
  for name, quantize in (("tflite_fp32", False), ("tflite_int8", True)):
    if not done(name + ".tflite"):
      with open(os.path.join(work, name + ".tflite.tmp"), "wb") as f:
        f.write(serving.classifier_to_tflite(model, quantize=quantize))
      os.rename(os.path.join(work, name + ".tflite.tmp"), os.path.join(work, name + ".tflite"))
  # HF: the same weights in HF's layout, with the package's tokenizer files.
  hf = os.path.join(work, "hf")
  checkpoints.write_hf(checkpoints.get_weights(model), config, hf)
  for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
    if os.path.exists(os.path.join(files["dir"], name)):
      shutil.copy(os.path.join(files["dir"], name), hf)
  with open(os.path.join(hf, "config.json")) as f:
    cfg = json.load(f)
  cfg.update(architectures=["BertForSequenceClassification"], num_labels=2)
  cfg.pop("id2label", None)
  cfg.pop("label2id", None)
  with open(os.path.join(hf, "config.json"), "w") as f:
    json.dump(cfg, f)


# ----------------------------------------------------------------------------- measuring


def _measure(predict):
  """predict(pairs) -> probabilities [n, 2]. Returns the stats dict (and check outputs)."""
  pairs = _pairs(max(FLAGS.requests, 32 * FLAGS.batches, _CHECK))
  check = np.concatenate([predict(pairs[i:i + 32]) for i in range(0, _CHECK, 32)])
  for p in pairs[:5]:  # warm-up (tracing, XLA compiles)
    predict([p])
  for i in range(3):
    predict(pairs[32 * i:32 * i + 32])
  lat, lat_cpu = [], []
  for p in pairs[:FLAGS.requests]:
    t, c = time.perf_counter(), time.process_time()
    predict([p])
    lat.append(time.perf_counter() - t)
    lat_cpu.append(time.process_time() - c)
  t, c = time.perf_counter(), time.process_time()
  for i in range(FLAGS.batches):
    predict(pairs[32 * i:32 * i + 32])
  n = 32 * FLAGS.batches
  tput, tput_cpu = n / (time.perf_counter() - t), n / (time.process_time() - c)
  lat = np.array(lat) * 1e3
  # CPU figures (process CPU time): steadier than wall time on a machine shared with other work.
  return dict(p50=float(np.percentile(lat, 50)), p99=float(np.percentile(lat, 99)),
              throughput=tput, p50_cpu=float(np.percentile(np.array(lat_cpu) * 1e3, 50)),
              throughput_cpu=tput_cpu, check=check.tolist())


def child_tf(variant, work):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tensorflow_text  # pylint: disable=import-outside-toplevel,unused-import
  if variant.startswith("tflite"):
    feats = tf.saved_model.load(os.path.join(work, "features")).signatures["features"]
    from official_bert import serving  # pylint: disable=import-outside-toplevel
    with open(os.path.join(work, variant + ".tflite"), "rb") as f:
      runner = serving.TFLiteRunner(f.read(), num_threads=os.cpu_count())

    def predict(pairs):
      f = feats(sentence=tf.constant([a for a, _ in pairs]),
                sentence2=tf.constant([b for _, b in pairs]))
      return runner({k: v.numpy() for k, v in f.items()})
  else:
    fn = tf.saved_model.load(os.path.join(work, variant)).signatures["serving_default"]

    def predict(pairs):
      return fn(sentence=tf.constant([a for a, _ in pairs]),
                sentence2=tf.constant([b for _, b in pairs]))["probabilities"].numpy()
  print(json.dumps(_measure(predict)))


def child_hf(work):
  import transformers  # pylint: disable=import-outside-toplevel
  d = os.path.join(work, "hf")
  pipe = transformers.pipeline(
      "text-classification",
      model=transformers.BertForSequenceClassification.from_pretrained(d),
      tokenizer=transformers.BertTokenizerFast.from_pretrained(d), top_k=None, device=-1)

  def predict(pairs):
    out = pipe([dict(text=a, text_pair=b) for a, b in pairs], batch_size=len(pairs))
    return np.array([[next(s["score"] for s in o if s["label"] == f"LABEL_{j}")
                      for j in range(2)] for o in out])
  print(json.dumps(_measure(predict)))


def _spawn(child, work):
  cmd = [sys.executable, os.path.abspath(__file__), f"--child={child}", f"--work_dir={work}"] + [
      f"--{k}={getattr(FLAGS, k)}" for k in ("data_dir", "max_seq_length", "requests", "batches",
                                             "xla_bucket")]
  env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
  if proc.returncode:
    raise SystemExit(f"serving_bench: {child} failed:\n{proc.stderr[-3000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1]) if child != "setup" else None


def main(_):
  if FLAGS.child == "setup":
    setup(FLAGS.work_dir)
    return
  if FLAGS.child == "hf":
    child_hf(FLAGS.work_dir)
    return
  if FLAGS.child:
    child_tf(FLAGS.child, FLAGS.work_dir)
    return
  if "saved" not in FLAGS.variants:
    raise app.UsageError("--variants must include saved: the others are checked against it")
  work = FLAGS.work_dir or tempfile.mkdtemp(prefix="serving_bench_")
  if not os.path.exists(os.path.join(work, "hf", "config.json")):
    _spawn("setup", work)
  sides = ["hf"] + FLAGS.variants
  res = {s: [] for s in sides}
  for r in range(FLAGS.rounds):
    order = sides[r % len(sides):] + sides[:r % len(sides)]
    for side in order:
      res[side].append(_spawn(side, work))
      m = res[side][-1]
      print(f"round {r} {side:12s} p50 {m['p50']:7.2f} ms  p99 {m['p99']:7.2f} ms  "
            f"batch32 {m['throughput']:7.1f} pairs/s | cpu: p50 {m.get('p50_cpu', 0):7.2f} ms "
            f"batch32 {m.get('throughput_cpu', 0):7.1f} pairs/cpu-s", flush=True)
  ref = np.array(res["saved"][0]["check"])
  print(f"{'':12s} {'p50 ms':>8s} {'p99 ms':>8s} {'pairs/s':>9s} {'max|dp|':>9s} "
        f"{'mean|dp|':>9s} {'labels':>7s}  (median [min-max] over {FLAGS.rounds} rounds; "
        f"|dp| and labels vs `saved` on {_CHECK} pairs)")
  summary, ok = {}, {}
  for side in sides:
    runs = res[side]
    med = {k: statistics.median(m[k] for m in runs) for k in ("p50", "p99", "throughput")}
    got = np.array(runs[0]["check"])
    diff = float(np.abs(got - ref).max())
    mean_diff = float(np.abs(got - ref).max(axis=1).mean())
    same = float((got.argmax(axis=1) == ref.argmax(axis=1)).mean())
    summary[side], ok[side] = med, diff <= FLAGS.tolerance
    spread = "[" + "-".join(f"{min(m['throughput'] for m in runs):.1f},"
                             f"{max(m['throughput'] for m in runs):.1f}".split(",")) + "]"
    print(f"{side:12s} {med['p50']:8.2f} {med['p99']:8.2f} {med['throughput']:9.1f} "
          f"{diff:9.2e} {mean_diff:9.2e} {same:7.2%}  {spread}"
          f"{'' if ok[side] else '  OUTSIDE TOLERANCE'}")
  for side in sides:
    if side not in ("hf", "tflite_int8"):
      assert ok[side], f"{side}: outputs differ from the float SavedModel by > {FLAGS.tolerance}"
  hf = summary["hf"]
  for side in sides[1:]:
    print(f"{side}: vs_hf_throughput={summary[side]['throughput'] / hf['throughput']:.2f} "
          f"vs_hf_p50={hf['p50'] / summary[side]['p50']:.2f}")
  best = max((s for s in sides if s != "hf" and ok[s]), key=lambda s: summary[s]["throughput"])
  fastest = min((s for s in sides if s != "hf" and ok[s]), key=lambda s: summary[s]["p50"])
  print(f"best_throughput={best} fastest_p50={fastest}")
  cpu = {s: {k: statistics.median(m[k] for m in res[s]) for k in ("p50_cpu", "throughput_cpu")}
         for s in sides}
  print(f"vs_hf_throughput_cpu={cpu[best]['throughput_cpu'] / cpu['hf']['throughput_cpu']:.2f} "
        f"vs_hf_p50_cpu={cpu['hf']['p50_cpu'] / cpu[fastest]['p50_cpu']:.2f}")
  print(f"vs_hf_throughput={summary[best]['throughput'] / hf['throughput']:.2f} "
        f"vs_hf_p50={hf['p50'] / summary[fastest]['p50']:.2f}")


if __name__ == "__main__":
  flags.mark_flag_as_required("data_dir")
  app.run(main)
