"""End to end: run_squad.py on a tiny random BERT (2 layers, hidden 64, S=64), in subprocesses.

Trains a few steps on a few SQuAD v1.1 questions and predicts on others (then predict-only from
the checkpoint), and trains / predicts on the small v2.0 file: the output files GR writes appear,
and eval_results.json holds the official evaluation of predictions.json.
"""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from official_bert.data import squad_split as split_squad
from official.nlp.tools import squad_evaluate_v1_1
from official.nlp.tools import squad_evaluate_v2_0

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_SQUAD = os.path.join(ROOT, "run_scripts", "run_squad.py")
TINY = {"vocab_size": 30522, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 96, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 64,
        "type_vocab_size": 2, "initializer_range": 0.02}


def _run(argv, check=True):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
  res = subprocess.run([sys.executable, RUN_SQUAD, *argv], env=env, capture_output=True,
                       text=True, timeout=600)
  if check and res.returncode:
    raise AssertionError(f"run_squad failed ({res.returncode}):\n{res.stderr[-4000:]}")
  return res


@pytest.fixture(scope="module")
def setup(tmp_path_factory, data_dir, uncased_vocab):
  d = tmp_path_factory.mktemp("run_squad")
  (d / "bert_config.json").write_text(json.dumps(TINY))
  dataset = split_squad.read_squad_file(os.path.join(data_dir, "squad", "dev-v1.1.json.zip"))
  for name, start, first in (("train", 0, True), ("eval", 24, False)):
    part, _ = split_squad.make_split(dataset, start, start + 1, first, max_questions=6)
    (d / f"{name}.json").write_text(json.dumps(part))
  common = [f"--vocab_file={uncased_vocab}", f"--bert_config_file={d / 'bert_config.json'}",
            "--max_seq_length=64", "--doc_stride=32", "--max_query_length=16",
            "--train_batch_size=4", "--predict_batch_size=5", "--iterations_per_loop=2",
            "--save_checkpoints_steps=2", "--learning_rate=1e-3"]
  return d, common, data_dir


@pytest.fixture(scope="module")
def v1_run(setup):
  d, common, _ = setup
  res = _run(common + [f"--output_dir={d / 'v1'}", "--do_train", f"--train_file={d / 'train.json'}",
                       "--num_train_epochs=2", "--do_predict",
                       f"--predict_file={d / 'eval.json'}"])
  return d, d / "v1", res


def _load(path):
  with open(path) as f:
    return json.load(f)


def test_v1_train_and_predict_files(v1_run):
  d, out, res = v1_run
  names = set(os.listdir(out))
  assert {"train.tf_record", "eval.tf_record", "predictions.json", "nbest_predictions.json",
          "eval_results.json", "bert_config.json", "checkpoint"} <= names
  assert "null_odds.json" not in names
  # 6 examples / batch 4 * 2 epochs = 3 steps (GR counts examples, not windows).
  assert tf.train.latest_checkpoint(str(out)).endswith("model.ckpt-3")
  assert "Num orig examples = 6" in res.stderr
  eval_data = _load(d / "eval.json")
  qids = [qa["id"] for a in eval_data["data"] for p in a["paragraphs"] for qa in p["qas"]]
  predictions = _load(out / "predictions.json")
  nbest = _load(out / "nbest_predictions.json")
  assert list(predictions) == qids and list(nbest) == qids
  for qid in qids:
    assert 1 <= len(nbest[qid]) <= 20 and nbest[qid][0]["text"] == predictions[qid]
    assert sum(e["probability"] for e in nbest[qid]) == pytest.approx(1.0)
    contexts = [p["context"] for a in eval_data["data"] for p in a["paragraphs"]
                if any(qa["id"] == qid for qa in p["qas"])]
    assert predictions[qid] in contexts[0]  # a span of the original text
  # eval_results.json is the official v1.1 evaluation (Model Garden's copy, fractions) x 100.
  ref = squad_evaluate_v1_1.evaluate(eval_data["data"], predictions)
  got = _load(out / "eval_results.json")
  assert got == pytest.approx({"exact_match": 100 * ref["exact_match"],
                               "f1": 100 * ref["final_f1"]})


def test_predict_only_from_the_checkpoint_gives_the_same_predictions(v1_run, setup):
  d, out, _ = v1_run
  _, common, _ = setup
  before = _load(out / "predictions.json")
  os.remove(out / "predictions.json")
  # GR's predict-only path: the newest checkpoint of output_dir (another batch size: padding).
  _run(common + [f"--output_dir={out}", "--do_predict", f"--predict_file={d / 'eval.json'}",
                 "--predict_batch_size=3"])
  assert _load(out / "predictions.json") == before


def test_v2_train_and_predict(setup):
  d, common, data_dir = setup
  small = os.path.join(data_dir, "squad", "dev-v2.0-small.json")
  out = d / "v2"
  _run(common + [f"--output_dir={out}", "--do_train", f"--train_file={small}",
                 "--num_train_epochs=1", "--do_predict", f"--predict_file={small}",
                 "--version_2_with_negative", "--null_score_diff_threshold=0.0"])
  predictions = _load(out / "predictions.json")
  odds = _load(out / "null_odds.json")
  assert len(predictions) == 14 and list(odds) == list(predictions)
  nbest = _load(out / "nbest_predictions.json")
  for qid, diff in odds.items():  # GR's rule: "" iff null score - best non-null > threshold
    best_non_null = next(e for e in nbest[qid] if e["text"])
    null = next(e for e in nbest[qid] if not e["text"])  # the lowest [CLS] score over windows
    assert diff == pytest.approx(null["start_logit"] + null["end_logit"]
                                 - best_non_null["start_logit"] - best_non_null["end_logit"])
    assert predictions[qid] == ("" if diff > 0.0 else best_non_null["text"])
  data = _load(small)["data"]
  ref = squad_evaluate_v2_0.evaluate(data, predictions, odds)
  got = _load(out / "eval_results.json")
  assert got["HasAns_total"] == 8 and got["NoAns_total"] == 6
  assert got["best_f1"] == pytest.approx(ref["final_f1"])
  assert got["best_f1_thresh"] == pytest.approx(ref["final_f1_thresh"])
  assert got["f1"] == pytest.approx(ref["f1"])


def test_bad_input_is_named(setup, tmp_path):
  _, common, _ = setup
  bad = tmp_path / "broken.json"
  bad.write_text('{"data": [{"title": "x", "paragraphs": [{"context": "c", "qas": [{"id": "q7"}]}'
                 ']}]}')
  res = _run(common + [f"--output_dir={tmp_path / 'out'}", "--do_predict",
                       f"--predict_file={bad}"], check=False)
  assert res.returncode != 0
  assert "broken.json" in res.stderr and "'q7'" in res.stderr and "'question'" in res.stderr
  res = _run(common + [f"--output_dir={tmp_path / 'out'}", "--do_predict",
                       f"--predict_file={bad}", "--max_query_length=61"], check=False)
  assert res.returncode != 0 and "--max_query_length=61" in res.stderr


def test_span_head_has_grs_variable_names():
  from official_bert import checkpoints, configs  # pylint: disable=import-outside-toplevel
  from official_bert import models  # pylint: disable=import-outside-toplevel
  config = configs.BertConfig(vocab_size=99, hidden_size=12, num_hidden_layers=1,
                              num_attention_heads=2, intermediate_size=13)
  model = models.BertSpanLabeler(config)
  model.build()
  weights = checkpoints.get_weights(model)
  assert weights["cls/squad/output_weights"].shape == (2, 12)  # GR: [2, hidden], transposed use
  assert weights["cls/squad/output_bias"].shape == (2,)
