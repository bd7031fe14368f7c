"""export_savedmodel.py --export_type={encoder,squad,ner}: each SavedModel, loaded with plain
tf.saved_model.load, gives the in-process model's outputs on the same texts (tokenized and packed
here in Python with GR's FullTokenizer); without tensorflow_text the load error is explained."""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import training_helper as th
from official_bert import encoder, models, serving, tokenization
from official_bert.training import loop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORT = os.path.join(ROOT, "run_scripts", "export_savedmodel.py")
SEQ = 40
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
QUESTIONS = ["who wrote hamlet?", "Where is the Café de Flore?"]
CONTEXTS = ["Hamlet is a tragedy written by William Shakespeare around 1600.",
            "The café sits on the boulevard Saint-Germain in Paris, near Saint-Germain-des-Prés."]
TEXTS = ["John Smith lives in New York .", "Zürich's naïve résumé-writers , unbelievably ,",
         "a"]


def _env():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_CONFIG", None)
  return env


@pytest.fixture(scope="module")
def exports(tmp_path_factory, uncased_vocab):
  """Random tiny models saved as training checkpoints, then exported by the CLI (in parallel)."""
  d = tmp_path_factory.mktemp("serving")
  config = th.tiny_config()
  config.to_json_file(str(d / "bert_config.json"))
  keras.utils.set_random_seed(11)
  built = {"squad": models.BertSpanLabeler(config),
           "ner": models.BertTokenClassifier(config, len(LABELS))}
  for name, model in built.items():
    model.build()
    (d / name).mkdir()
    loop.build_checkpoint(model).write(str(d / name / "model.ckpt-1"))
  (d / "ner" / "label_list.txt").write_text("\n".join(LABELS) + "\n")
  procs = {}
  for kind, ckpt in (("squad", "squad"), ("ner", "ner"), ("encoder", "squad")):
    procs[kind] = subprocess.Popen(
        [sys.executable, EXPORT, f"--export_type={kind}", f"--vocab_file={uncased_vocab}",
         f"--bert_config_file={d / 'bert_config.json'}",
         f"--init_checkpoint={d / ckpt / 'model.ckpt-1'}", f"--max_seq_length={SEQ}",
         f"--export_dir={d / (kind + '_savedmodel')}", "--progress_interval_secs=0.05"],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  for kind, proc in procs.items():
    err = proc.communicate(timeout=600)[1]
    assert proc.returncode == 0, (kind, err[-3000:])
    (d / f"{kind}.log").write_text(err)
  tokenizer = tokenization.FullTokenizer(uncased_vocab, do_lower_case=True)
  return d, built, tokenizer


def _pack(tokenizer, text_a, text_b=None):
  """GR's convert_single_example packing (no truncation needed for these short texts)."""
  a = tokenizer.tokenize(text_a)
  b = tokenizer.tokenize(text_b) if text_b is not None else []
  tokens = ["[CLS]"] + a + ["[SEP]"] + (b + ["[SEP]"] if b else [])
  segments = [0] * (len(a) + 2) + [1] * (len(b) + 1 if b else 0)
  assert len(tokens) <= SEQ
  ids = tokenizer.convert_tokens_to_ids(tokens)
  pad = SEQ - len(ids)
  return tokens, {"input_ids": ids + [0] * pad, "input_mask": [1] * len(ids) + [0] * pad,
                  "segment_ids": segments + [0] * pad}


def _batch(packed):
  return {k: tf.constant([p[k] for p in packed], tf.int32) for k in packed[0]}


def test_encoder_export_equals_the_encoder(exports):
  d, built, tokenizer = exports
  bert = encoder.BertModel(built["squad"].config)
  bert.build()
  for ours, theirs in zip(bert.weights, built["squad"].bert.weights):
    ours.assign(theirs)
  m = tf.saved_model.load(str(d / "encoder_savedmodel"))
  out = m.signatures["sentence_pair"](sentence=tf.constant(QUESTIONS),
                                      sentence2=tf.constant(CONTEXTS))
  want = bert(_batch([_pack(tokenizer, q, c)[1] for q, c in zip(QUESTIONS, CONTEXTS)]))
  np.testing.assert_allclose(out["pooled_output"], want["pooled_output"], atol=1e-5)
  np.testing.assert_allclose(out["sequence_output"], want["sequence_output"], atol=1e-5)
  single = m.signatures["serving_default"](sentence=tf.constant(TEXTS))
  want = bert(_batch([_pack(tokenizer, t)[1] for t in TEXTS]))
  np.testing.assert_allclose(single["pooled_output"], want["pooled_output"], atol=1e-5)


def test_squad_export_logits_and_answer(exports):
  d, built, tokenizer = exports
  m = tf.saved_model.load(str(d / "squad_savedmodel"))
  out = m.signatures["serving_default"](question=tf.constant(QUESTIONS),
                                        context=tf.constant(CONTEXTS))
  packed = [_pack(tokenizer, q, c) for q, c in zip(QUESTIONS, CONTEXTS)]
  want = built["squad"](_batch([p for _, p in packed]))
  np.testing.assert_allclose(out["start_logits"], want["start_logits"], atol=1e-5)
  np.testing.assert_allclose(out["end_logits"], want["end_logits"], atol=1e-5)
  for row, (tokens, p) in enumerate(packed):
    start = np.asarray(want["start_logits"][row])
    end = np.asarray(want["end_logits"][row])
    context = [i for i, t in enumerate(tokens) if p["segment_ids"][i] == 1 and t != "[SEP]"]
    best = max((start[i] + end[j], i, j) for i in context for j in context if i <= j < i + 30)
    _, i, j = best
    assert (int(out["start_position"][row]), int(out["end_position"][row])) == (i, j)
    text = " ".join(tokens[i:j + 1]).replace(" ##", "")
    assert out["answer"][row].numpy().decode() == text


def test_ner_export_tags_each_word_at_its_first_wordpiece(exports):
  d, built, tokenizer = exports
  m = tf.saved_model.load(str(d / "ner_savedmodel"))
  out = m.signatures["serving_default"](text=tf.constant(TEXTS))
  for row, text in enumerate(TEXTS):
    words = text.split()
    tokens, first = ["[CLS]"], []
    for w in words:
      first.append(len(tokens))
      tokens += tokenizer.tokenize(w) or ["[UNK]"]
    tokens.append("[SEP]")
    ids = tokenizer.convert_tokens_to_ids(tokens)
    pad = SEQ - len(ids)
    logits = built["ner"](_batch([{"input_ids": ids + [0] * pad,
                                   "input_mask": [1] * len(ids) + [0] * pad,
                                   "segment_ids": [0] * SEQ}]))[0]
    want = [LABELS[int(np.argmax(logits[p]))] for p in first]
    got_words = [w.decode() for w in out["words"][row].numpy()]
    got_tags = [t.decode() for t in out["tags"][row].numpy()]
    assert got_words[:len(words)] == words and set(got_words[len(words):]) <= {""}
    assert got_tags[:len(words)] == want and set(got_tags[len(words):]) <= {""}


_PLAIN_LOAD = """
import sys
import tensorflow as tf
if sys.argv[2] == "with":
  import tensorflow_text  # registers the ops the SavedModel uses
m = tf.saved_model.load(sys.argv[1])
print(m.signatures["serving_default"](text=tf.constant(["Paris ."]))["tags"].shape)
"""


@pytest.mark.parametrize("kind", ["encoder", "squad", "ner"])
def test_export_logs_each_stage_with_elapsed_time(exports, kind):
  # --progress_interval_secs=0.05: a line per stage, then heartbeats of the current one.
  d = exports[0]
  log = (d / f"{kind}.log").read_text()
  stages = re.findall(r"export_savedmodel: (.+?) elapsed [\dhms]+ \(stage [\dhms]+\)", log)
  ckpt = d / ("ner" if kind == "ner" else "squad") / "model.ckpt-1"
  order = [f"building the {kind} model", f"restoring {ckpt}", "building the tokenizer ",
           "tracing signatures 0/",
           f"writing SavedModel {d / (kind + '_savedmodel')}"]
  firsts = [next((i for i, s in enumerate(stages) if s.startswith(o)), None) for o in order]
  assert None not in firsts and firsts == sorted(firsts), stages
  # The encoder's three signatures are two functions (serving_default = single_sentence).
  assert f"tracing signatures 0/{2 if kind == 'encoder' else 1}" in stages
  logged = [line for line in log.splitlines() if re.match(r"[IWE]\d{4} ", line)]
  assert "export_savedmodel: finished in " in logged[-1], logged[-3:]


def test_plain_load_needs_tensorflow_text_and_serving_load_says_so(exports, monkeypatch):
  d, _, _ = exports
  path = str(d / "ner_savedmodel")
  without = subprocess.run([sys.executable, "-c", _PLAIN_LOAD, path, "without"],
                           capture_output=True, text=True, env=_env(), timeout=600, check=False)
  assert without.returncode != 0 and "Op type not registered" in without.stderr
  with_tf_text = subprocess.run([sys.executable, "-c", _PLAIN_LOAD, path, "with"],
                                capture_output=True, text=True, env=_env(), timeout=600,
                                check=False)
  assert with_tf_text.returncode == 0, with_tf_text.stderr[-3000:]
  assert with_tf_text.stdout.strip() == "(1, 2)"

  def unregistered(_):  # what tf.saved_model.load raises in a process without the ops
    raise tf.errors.NotFoundError(
        None, None, "Op type not registered 'FastWordpieceTokenizeWithOffsets'")

  monkeypatch.setattr(tf.saved_model, "load", unregistered)
  with pytest.raises(RuntimeError, match=r"import tensorflow_text"):
    serving.load(path)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_classifier_tflite_equals_the_model(pooling):
  """TFLite's own interpreter (builtin ops only) on padded batches of two shapes gives the Keras
  model's probabilities; the int8-weight conversion stays close."""
  keras.utils.set_random_seed(5)
  model = models.BertClassifier(th.tiny_config(), 3, pooling=pooling)
  model.build()
  float_runner = serving.TFLiteRunner(serving.classifier_to_tflite(model))
  int8_runner = serving.TFLiteRunner(serving.classifier_to_tflite(model, quantize=True))
  rng = np.random.default_rng(0)
  for batch, length in ((3, 9), (1, 5)):
    ids = rng.integers(1, 99, (batch, length)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[0, length - 2:] = 0  # padding in the first row
    segments = np.zeros_like(ids)
    segments[:, length // 2:] = 1
    features = dict(input_ids=ids, input_mask=mask, segment_ids=segments)
    expected = tf.nn.softmax(model(features, training=False), axis=-1).numpy()
    np.testing.assert_allclose(float_runner(features), expected, atol=1e-5)
    np.testing.assert_allclose(int8_runner(features), expected, atol=5e-2)
