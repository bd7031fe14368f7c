"""End to end: run_ner.py trains a tiny random BERT a few steps on a CoNLL slice, then tags."""

import os
import subprocess
import sys

import pytest
from seqeval import metrics as seqeval_metrics

from official_bert import configs
from official_bert.data import tagging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _slice(src, dst, num_sentences):
  """The first num_sentences sentences of a CoNLL file (with its -DOCSTART- lines)."""
  out, count = [], 0
  with open(src) as f:
    for line in f:
      out.append(line)
      if not line.strip():
        count += 1
        if count > num_sentences:
          break
  with open(dst, "w") as f:
    f.writelines(out)


def _run(args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "run_scripts", "run_ner.py"), *args],
                        env=env, capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  return proc


def _read_columns(path):
  sentences = [[line.split() for line in block.splitlines()]
               for block in open(path).read().strip().split("\n\n")]
  return [s for s in sentences if s[0][0] != "-DOCSTART-"]


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory, data_dir, uncased_vocab):
  tmp = tmp_path_factory.mktemp("ner")
  conll = os.path.join(data_dir, "conll2003")
  _slice(os.path.join(conll, "eng.train"), tmp / "train.txt", 64)
  _slice(os.path.join(conll, "eng.testa"), tmp / "dev.txt", 40)
  # A predict file without gold tags, with a sentence far longer than max_seq_length.
  long_sentence = " ".join(["Schwarzenegger visited Leicestershire ."] * 30).split()
  with open(tmp / "test.txt", "w") as f:
    f.write("EU\nrejects\nGerman\ncall\n\n" + "".join(w + "\n" for w in long_sentence))
  config = configs.BertConfig(vocab_size=30522, hidden_size=72, num_hidden_layers=2,
                              num_attention_heads=4, intermediate_size=100,
                              max_position_embeddings=64, type_vocab_size=2)
  config.to_json_file(str(tmp / "bert_config.json"))
  out = tmp / "out"
  common = [f"--data_dir={tmp}", f"--bert_config_file={tmp / 'bert_config.json'}",
            f"--vocab_file={uncased_vocab}", "--do_lower_case=True", f"--output_dir={out}",
            "--max_seq_length=32", "--eval_batch_size=8", "--predict_batch_size=8"]
  _run(common + ["--do_train", "--do_eval", "--do_predict", "--train_batch_size=8",
                 "--num_train_steps=6", "--learning_rate=1e-3", "--save_checkpoints_steps=3"])
  first_predictions = open(out / "test_predictions.txt").read()
  # Eval / predict only: restores the fine-tuned checkpoint from output_dir.
  _run(common + ["--do_predict"])  # same batch size: bit-identical outputs expected
  return dict(tmp=tmp, out=out, long_sentence=long_sentence,
              first_predictions=first_predictions, vocab=uncased_vocab)


def test_outputs_appear(ner_run):
  out = ner_run["out"]
  for name in ("label_list.txt", "bert_config.json", "eval_results.txt", "eval_predictions.txt",
               "test_predictions.txt"):
    assert (out / name).exists(), name
  assert os.path.exists(str(out / "model.ckpt-6.index"))
  labels = tagging.read_label_list(str(out / "label_list.txt"))
  assert labels == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]


def test_every_eval_word_predicted_and_scored(ner_run):
  gold = tagging.read_conll(str(ner_run["tmp"] / "dev.txt"))
  rows = _read_columns(str(ner_run["out"] / "eval_predictions.txt"))
  assert [[r[0] for r in s] for s in rows] == [ex.words for ex in gold]
  assert [[r[1] for r in s] for s in rows] == [ex.labels for ex in gold]
  preds = [[r[2] for r in s] for s in rows]
  allowed = {"O", "I-LOC", "B-LOC", "I-MISC", "B-MISC", "I-ORG", "B-ORG", "I-PER", "B-PER"}
  assert {t for s in preds for t in s} <= allowed
  # eval_results.txt agrees with seqeval run on the written predictions.
  results = dict(line.split(" = ") for line in open(ner_run["out"] / "eval_results.txt")
                 .read().splitlines())
  f1 = 100 * seqeval_metrics.f1_score([ex.labels for ex in gold], preds)
  assert float(results["eval_f1"]) == pytest.approx(f1, abs=0.006)
  assert float(results["eval_loss"]) > 0


def test_long_unlabelled_sentence_every_word_tagged(ner_run):
  rows = _read_columns(str(ner_run["out"] / "test_predictions.txt"))
  assert [[r[0] for r in s] for s in rows] == [["EU", "rejects", "German", "call"],
                                               ner_run["long_sentence"]]
  assert all(len(r) == 2 for s in rows for r in s)  # word + prediction, no gold column


def test_predict_only_restores_the_trained_model(ner_run):
  assert open(ner_run["out"] / "test_predictions.txt").read() == ner_run["first_predictions"]


def test_periodic_eval_keeps_the_best_entity_f1(ner_run, tmp_path):
  # --eval_every_steps scores the eval file during training; best/ holds the step with the
  # highest entity F1 of eval_history.jsonl, and its eval_results.txt says so.
  import json  # pylint: disable=import-outside-toplevel
  tmp, out = ner_run["tmp"], tmp_path / "out"
  _run([f"--data_dir={tmp}", f"--bert_config_file={tmp / 'bert_config.json'}",
        f"--vocab_file={ner_run['vocab']}", "--do_lower_case=True", f"--output_dir={out}",
        "--max_seq_length=32", "--eval_batch_size=8", "--do_train", "--train_batch_size=8",
        "--num_train_steps=6", "--learning_rate=1e-3", "--save_checkpoints_steps=3",
        "--iterations_per_loop=3", "--eval_every_steps=3", "--keep_best_checkpoint"])
  history = [json.loads(line) for line in open(out / "eval_history.jsonl")]
  assert [h["global_step"] for h in history] == [3, 6]
  best = max(history, key=lambda h: h["eval_f1"])
  results = dict(line.split(" = ") for line in open(out / "best" / "eval_results.txt")
                 .read().splitlines())
  assert float(results["eval_f1"]) == pytest.approx(best["eval_f1"], abs=0.006)
  assert os.path.exists(out / "best" / f"model.ckpt-{best['global_step']}.index")
