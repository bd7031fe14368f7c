"""Tokenization: ours vs GR's own tokenization.py (bert-tensorflow 1.0.4) as the oracle.

Three paths are checked for identical ids on every text corpus in the shared data and on
tests/fixtures/adversarial.txt, for the uncased and the cased vocab: the plain Python path
(`FullTokenizer.tokenize_uncached`), the cached batch path (`convert_batch_to_ids`, `tokenize`),
and the in-graph layer (`BertTokenizerLayer`). The default run uses a deterministic sample of each
large corpus (every k-th line, ~25 KB per file); `-m slow` runs every line of every corpus.
"""

import glob
import json
import os
import zipfile

import numpy as np
import pytest
import tensorflow as tf

import gr_reference
from official_bert import tokenization
from official_bert.layers import preprocessing

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
SAMPLE_BYTES = 25_000

CORPORA = [
    "sample_text/sample_text.txt", "wikipedia_sample/wiki_0*", "wikitext-2/*", "gutenberg/*.txt",
    "tinyshakespeare/input.txt", "glue/*/*.tsv", "glue/MRPC/msr_paraphrase_*.txt",
    "conll2003/eng.*", "squad/dev-v1.1.json.zip", "squad/dev-v2.0-small.json",
]


@pytest.fixture(scope="module")
def gr():
  if not gr_reference.gr_available():
    pytest.fail("GR's code (pip bert-tensorflow, tf-slim) is a test dependency; install "
                "requirements-test.txt")
  return gr_reference.load_gr_module("tokenization")


_CACHE = {}


def _tokenizers(gr, vocab_file, do_lower_case):
  """(GR's FullTokenizer, ours, our in-graph layer), built once per vocab."""
  key = (vocab_file, do_lower_case)
  if key not in _CACHE:
    _CACHE[key] = (gr.FullTokenizer(vocab_file, do_lower_case),
                   tokenization.FullTokenizer(vocab_file, do_lower_case),
                   preprocessing.BertTokenizerLayer(vocab_file, do_lower_case))
  return _CACHE[key]


@pytest.fixture(params=[True, False], ids=["uncased", "cased"])
def vocab_case(request, uncased_vocab, cased_vocab):
  return (uncased_vocab if request.param else cased_vocab), request.param


def _squad_texts(raw):
  data = json.loads(raw)["data"]
  for article in data:
    yield article["title"]
    for para in article["paragraphs"]:
      yield para["context"]
      for qa in para["qas"]:
        yield qa["question"]
        for ans in qa.get("answers", []):
          yield ans["text"]


def _corpus_lines(path):
  """A corpus file -> its text lines (split on \\n only, so CRLF keeps its \\r)."""
  if path.endswith(".zip"):
    with zipfile.ZipFile(path) as z:
      name = [n for n in z.namelist() if n.endswith(".json")][0]
      return list(_squad_texts(z.read(name)))
  with open(path, "rb") as f:
    raw = f.read()
  if path.endswith(".json"):
    return list(_squad_texts(raw))
  try:
    return raw.decode("utf-8").split("\n")
  except UnicodeDecodeError:  # e.g. cp1252 quotes in Gutenberg: bytes, as GR gets them
    return raw.split(b"\n")


def _corpus_files(data_dir):
  files = []
  for pattern in CORPORA:
    matched = sorted(glob.glob(os.path.join(data_dir, pattern)))
    assert matched, f"no corpus matches {pattern} under {data_dir}"
    files.extend(matched)
  return files


def _sample(lines, budget=SAMPLE_BYTES):
  """Every k-th line, k chosen so that about `budget` bytes remain (deterministic)."""
  size = sum(len(l) for l in lines) + 1
  step = max(1, size // budget)
  return lines[::step]


def _graph_ids(layer, lines, batch=4096):
  out = []
  for i in range(0, len(lines), batch):
    out.extend(layer(tf.constant(lines[i:i + batch])).to_list())
  return out


def _assert_identical(gr_tok, ours, layer, lines, what, in_graph=True):
  """All our paths give GR's ids, line by line; the message shows the first mismatch."""
  expected = [gr_tok.convert_tokens_to_ids(gr_tok.tokenize(line)) for line in lines]
  paths = {
      "python": [ours.convert_tokens_to_ids(ours.tokenize_uncached(l)) for l in lines],
      "batch": ours.convert_batch_to_ids(lines),
      "tokenize": [ours.convert_tokens_to_ids(ours.tokenize(l)) for l in lines],
  }
  if in_graph:
    paths["in_graph"] = _graph_ids(layer, lines)
  for name, got in paths.items():
    assert len(got) == len(expected)
    bad = [i for i, (a, b) in enumerate(zip(got, expected)) if a != b]
    assert not bad, (
        f"{what}: {name} path differs from GR on {len(bad)}/{len(lines)} lines; first "
        f"{lines[bad[0]][:120]!r}: ours {gr_tok.convert_ids_to_tokens(got[bad[0]])[:30]} "
        f"GR {gr_tok.convert_ids_to_tokens(expected[bad[0]])[:30]}")
  return sum(len(e) for e in expected)


def _adversarial_lines():
  with open(os.path.join(FIXTURES, "adversarial.txt"), "rb") as f:
    return f.read().decode("utf-8").split("\n")


# ----------------------------------------------------------------------------------------------
# Identity with GR.


def test_adversarial_identical(gr, vocab_case):
  gr_tok, ours, layer = _tokenizers(gr, *vocab_case)
  lines = _adversarial_lines()
  n = _assert_identical(gr_tok, ours, layer, lines, "adversarial.txt")
  assert n > 1000
  # The fixture does exercise what lower-casing changes (final sigma, accents) and [UNK]s.
  expected = [gr_tok.tokenize(l) for l in lines]
  flat = [t for toks in expected for t in toks]
  assert flat.count("[UNK]") > 10
  if vocab_case[1]:
    assert "##ς" in flat and "##σ" in flat


def test_corpora_sampled_identical(gr, vocab_case, data_dir):
  gr_tok, ours, layer = _tokenizers(gr, *vocab_case)
  lines, files = [], _corpus_files(data_dir)
  for path in files:
    lines.extend(_sample(_corpus_lines(path)))
  total = _assert_identical(gr_tok, ours, layer, lines, f"samples of {len(files)} corpora")
  assert total > 60_000


@pytest.mark.slow
def test_corpora_full_identical(gr, vocab_case, data_dir):
  gr_tok, ours, layer = _tokenizers(gr, *vocab_case)
  for path in _corpus_files(data_dir):
    _assert_identical(gr_tok, ours, layer, _corpus_lines(path), path)


def test_basic_and_wordpiece_match_gr(gr, vocab_case):
  gr_tok, ours, _ = _tokenizers(gr, *vocab_case)
  lines = _adversarial_lines()
  for line in lines:
    assert ours.basic_tokenizer.tokenize(line) == gr_tok.basic_tokenizer.tokenize(line), line
    basic = " ".join(gr_tok.basic_tokenizer.tokenize(line))
    assert (ours.wordpiece_tokenizer.tokenize(basic) ==
            gr_tok.wordpiece_tokenizer.tokenize(basic)), line
  # Standalone classes with GR's defaults.
  for line in lines[:10]:
    assert (tokenization.BasicTokenizer().tokenize(line) ==
            gr.BasicTokenizer().tokenize(line))
    assert (tokenization.BasicTokenizer(do_lower_case=False).tokenize(line) ==
            gr.BasicTokenizer(do_lower_case=False).tokenize(line))


def test_in_graph_basic_tokens_match_gr(gr, vocab_case):
  gr_tok, _, layer = _tokenizers(gr, *vocab_case)
  lines = _adversarial_lines()
  got = [[t.decode("utf-8") for t in row] for row in layer.basic_tokenize(lines).to_list()]
  assert got == [gr_tok.basic_tokenizer.tokenize(l) for l in lines]


def test_utf8_bytes_and_invalid_bytes(gr, vocab_case):
  gr_tok, ours, layer = _tokenizers(gr, *vocab_case)
  texts = [b"caf\xc3 \xff abc \xe2\x82 x\xe2\x82\xac \xf0\x9f\x98 z", b"\xc0\xaf ok \xed\xa0\x80 y",
           "Übermäßig ΣΟΦΙΑΣ".encode("utf-8"), b"\xf4\x90\x80\x80 end \x80\x80"]
  for text in texts:
    expected = gr_tok.convert_tokens_to_ids(gr_tok.tokenize(text))
    assert ours.convert_tokens_to_ids(ours.tokenize(text)) == expected, text
    assert ours.tokenize_to_ids(text) == expected, text
    assert layer(tf.constant([text])).to_list()[0] == expected, text


def test_preserve_unused_tokens(gr, uncased_vocab):
  """GR 1.0.4's --preserve_unused_tokens: [unusedN] in the vocab is kept whole."""
  lines = ["a [unused1] b [UNUSED1] x[unused2] [unused999999] [unused0]. [unused17]",
           "[unused5]s and [unused\u200b6] [unused7]\u00ad", "[MASK] [unused98]"]
  gr_tok = gr.FullTokenizer(uncased_vocab, True)
  ours = tokenization.FullTokenizer(uncased_vocab, True, preserve_unused_tokens=True)
  ours_off = tokenization.FullTokenizer(uncased_vocab, True)
  off = [gr_tok.tokenize(l) for l in lines]
  gr.FLAGS.preserve_unused_tokens = True
  try:
    on = [gr_tok.tokenize(l) for l in lines]
    basic_on = [gr.BasicTokenizer(True, gr_tok.vocab).tokenize(l) for l in lines]
  finally:
    gr.FLAGS.preserve_unused_tokens = False
  assert on != off and "[unused1]" in on[0]
  assert [ours.tokenize(l) for l in lines] == on
  assert [ours.tokenize_uncached(l) for l in lines] == on
  assert [ours.basic_tokenizer.tokenize(l) for l in lines] == basic_on
  assert [ours_off.tokenize(l) for l in lines] == off


def test_batch_path_whole_text_steps_exact(gr, vocab_case):
  """The batch path lower-cases, normalizes and cleans a whole batch at once; GR does it per word.

  That is exact only if every word boundary blocks str.lower()'s Greek final-sigma context and
  NFD's reordering: each character str.split() splits on, CJK, and the characters GR deletes
  (some of them case-ignorable) between cased letters, sigmas and marks, in one batch.
  """
  gr_tok, ours, _ = _tokenizers(gr, *vocab_case)
  separators = [chr(c) for c in range(0x3000 + 1) if chr(c).isspace()] + [
      "\u2028", "\u2029", "\u4e2d", "\u00ad", "\u200d", "\u034f", "\x00", "\x07", "\ufffd",
      ".", "'", "\u2019", ":", "\u0301", "\u0345", "\u1fef", "\U000e0001"]
  lines = []
  for sep in separators:
    lines += [f"\u0391\u03a3{sep}\u0391", f"\u0391{sep}\u03a3\u0391 \u039f\u0394\u039f\u03a3{sep}",
              f"x\u03a3{sep}\u0301\u0327 \u0130{sep}\u03a3", f"\u03a3{sep}\u03a3{sep}\u03a3",
              f"a{sep}\u0345\u03a3\u0345{sep}b"]
  expected = [gr_tok.convert_tokens_to_ids(gr_tok.tokenize(l)) for l in lines]
  assert ours.convert_batch_to_ids(lines) == expected
  assert [ours.tokenize_to_ids(l) for l in lines] == expected


def test_spacing_mark_reordering_batch_path_exact(gr, uncased_vocab):
  """NFD reorders spacing marks (Mc, ccc > 0); the Python and batch paths follow it exactly.

  The in-graph layer maps character by character and does not reorder: a documented limit.
  """
  gr_tok, ours, _ = _tokenizers(gr, uncased_vocab, True)
  lines = ["x\U0001D16D\U0001D165 q\u302f\u0301\u302e", "\U0001D16D\u0300\U0001D165"]
  for line in lines:
    assert ours.tokenize(line) == gr_tok.tokenize(line)
    assert ours.tokenize_uncached(line) == gr_tok.tokenize(line)


def test_tf_text_bert_tokenizer_is_not_gr(gr, uncased_vocab):
  """Why the layer has its own basic tokenizer: tf-text's FastBertTokenizer differs from GR."""
  import tensorflow_text as tf_text  # pylint: disable=import-outside-toplevel
  gr_tok, _, layer = _tokenizers(gr, uncased_vocab, True)
  fast = tf_text.FastBertTokenizer(vocab=list(gr_tok.vocab), token_out_type=tf.int64,
                                   lower_case_nfd_strip_accents=True)
  for text in ["ΟΔΟΣ", "a\ufffdb", "ﬁnance ²", "ＡＢＣ", "ß"]:
    expected = gr_tok.convert_tokens_to_ids(gr_tok.tokenize(text))
    assert fast.tokenize([text]).to_list()[0] != expected, text
    assert layer([text]).to_list()[0] == expected, text


# ----------------------------------------------------------------------------------------------
# GR's module-level API.


def test_module_functions_match_gr(gr, uncased_vocab):
  for text in ["abc", b"abc", "é", "é".encode("utf-8"), b"a\xffb"]:
    assert tokenization.convert_to_unicode(text) == gr.convert_to_unicode(text)
    assert tokenization.printable_text(text) == gr.printable_text(text)
  for bad in [1, None]:
    with pytest.raises(ValueError):
      tokenization.convert_to_unicode(bad)
  assert tokenization.whitespace_tokenize("  a\tb\u3000c \n") == gr.whitespace_tokenize(
      "  a\tb\u3000c \n")
  assert tokenization.load_vocab(uncased_vocab) == gr.load_vocab(uncased_vocab)
  ours = tokenization.FullTokenizer(uncased_vocab, True)
  ids = list(range(0, 30522, 97))
  assert ours.convert_ids_to_tokens(ids) == gr.FullTokenizer(
      uncased_vocab, True).convert_ids_to_tokens(ids)
  assert ours.convert_tokens_to_ids(ours.convert_ids_to_tokens(ids)) == ids
  assert tokenization.convert_tokens_to_ids(ours.vocab, ["[CLS]", "the"]) == [101, 1996]
  assert tokenization.convert_ids_to_tokens(ours.inv_vocab, [102, 103]) == ["[SEP]", "[MASK]"]


@pytest.mark.parametrize("do_lower_case", [True, False])
@pytest.mark.parametrize("ckpt", [
    "", "/x/uncased_L-12_H-768_A-12/bert_model.ckpt", "gs://b/cased_L-24_H-1024_A-16/bert_model.ckpt",
    "/x/multi_cased_L-12_H-768_A-12/bert_model.ckpt", "/x/chinese_L-12_H-768_A-12/bert_model.ckpt",
    "/x/my_model/bert_model.ckpt", "/x/model.ckpt-100"])
def test_validate_case_matches_checkpoint(gr, do_lower_case, ckpt):
  def outcome(fn):
    try:
      fn(do_lower_case, ckpt)
      return None
    except ValueError as e:
      return str(e)
  ours, theirs = (outcome(tokenization.validate_case_matches_checkpoint),
                  outcome(gr.validate_case_matches_checkpoint))
  assert (ours is None) == (theirs is None)
  if ours:
    assert f"--do_lower_case={do_lower_case}" in ours


# ----------------------------------------------------------------------------------------------
# Vocab files.


def _write(tmp_path, name, text):
  path = tmp_path / name
  path.write_bytes(text.encode("utf-8"))
  return str(path)


def test_vocab_trailing_newline_or_not(gr, tmp_path):
  tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "want", "##want", "##ed", "runn",
            "##ing", ",", "un", "##aff", "##able"]
  with_nl = _write(tmp_path, "a.txt", "\n".join(tokens) + "\n")
  without = _write(tmp_path, "b.txt", "\n".join(tokens))
  crlf = _write(tmp_path, "c.txt", "\r\n".join(tokens) + "\r\n")
  for path in (with_nl, without, crlf):
    assert tokenization.load_vocab(path) == gr.load_vocab(path)
    assert list(tokenization.load_vocab(path)) == tokens
  tok = tokenization.FullTokenizer(without, True)
  # GR's own unit-test example.
  assert tok.tokenize("UNwant\u00E9d,running") == ["un", "##want", "##ed", ",", "runn", "##ing"]
  assert tok.tokenize("unaffable " + "a" * 201) == ["un", "##aff", "##able", "[UNK]"]


def test_vocab_duplicate_is_an_error(tmp_path):
  path = _write(tmp_path, "dup.txt", "[PAD]\n[UNK]\n[CLS]\nthe\n[SEP]\n[MASK]\nthe\n")
  with pytest.raises(ValueError, match=r"duplicate token 'the' \(first on line 4\) \(\S*dup.txt:7\)"):
    tokenization.load_vocab(path)


def test_vocab_missing_special_tokens(tmp_path):
  path = _write(tmp_path, "nomask.txt", "[PAD]\n[UNK]\n[CLS]\nthe\n")
  with pytest.raises(ValueError, match=r"missing required token\(s\) \[SEP\], \[MASK\] \(\S*nomask.txt\)"):
    tokenization.FullTokenizer(path, required_tokens=tokenization.PRETRAINING_TOKENS)
  with pytest.raises(ValueError, match=r"missing required token\(s\) \[SEP\] \("):
    tokenization.FullTokenizer(path, required_tokens=tokenization.FINE_TUNING_TOKENS)
  with pytest.raises(ValueError, match="missing required"):
    preprocessing.BertTokenizerLayer(path)
  # Like GR's, the tokenizer itself takes any vocab.
  tok = tokenization.FullTokenizer(path)
  assert tok.tokenize("the cat") == ["the", "[UNK]"]


def test_case_mismatch_warning(uncased_vocab, cased_vocab):
  uncased = tokenization.load_vocab(uncased_vocab)
  cased = tokenization.load_vocab(cased_vocab)
  assert tokenization.vocab_is_lower_case(uncased) and not tokenization.vocab_is_lower_case(cased)
  assert tokenization.warn_if_case_mismatch(uncased, True) is None
  assert tokenization.warn_if_case_mismatch(cased, False) is None
  assert "--do_lower_case=True" in tokenization.warn_if_case_mismatch(uncased, False, "v.txt")
  assert "--do_lower_case=False" in tokenization.warn_if_case_mismatch(cased, True, "v.txt")


# ----------------------------------------------------------------------------------------------
# Batch API and preprocessing layer.


def test_batch_api(uncased_vocab):
  tok = tokenization.FullTokenizer(uncased_vocab, True)
  texts = ["Hello, World!", "", "hello world", b"caf\xc3\xa9"]
  assert tok.tokenize_batch(texts) == [["hello", ",", "world", "!"], [], ["hello", "world"],
                                       ["cafe"]]
  assert tok.convert_batch_to_ids(texts) == [
      tok.convert_tokens_to_ids(t) for t in tok.tokenize_batch(texts)]


def test_truncate_lengths_match_gr_loop():
  """Closed form vs GR's _truncate_seq_pair loop (pop from the longer, from b on ties)."""
  la, lb, m = np.meshgrid(np.arange(0, 13), np.arange(0, 13), np.arange(1, 16), indexing="ij")
  la, lb, m = la.ravel(), lb.ravel(), m.ravel()
  got_a, got_b = preprocessing.truncate_seq_pair_lengths(
      tf.constant(la), tf.constant(lb), tf.constant(m))
  for i in range(la.size):
    a, b = list(range(la[i])), list(range(lb[i]))
    while len(a) + len(b) > m[i]:
      if len(a) > len(b):
        a.pop()
      else:
        b.pop()
    assert (int(got_a[i]), int(got_b[i])) == (len(a), len(b)), (la[i], lb[i], m[i])


_GR_FEATURES = """
import json, sys
import tensorflow as tf
sys.modules.setdefault("tensorflow.contrib", tf.contrib)
from absl import flags
from bert import run_classifier as rc, tokenization as tok
flags.FLAGS.mark_as_parsed()
with open(sys.argv[1], encoding="utf-8") as f:
  jobs = json.load(f)
out = []
for vocab, lower, seq_length, pairs in jobs:
  t = tok.FullTokenizer(vocab, lower)
  features = []
  for i, (a, b) in enumerate(pairs):
    ex = rc.InputExample(guid=str(i), text_a=a, text_b=b, label="0")
    f = rc.convert_single_example(10, ex, ["0"], seq_length, t)
    features.append([f.input_ids, f.input_mask, f.segment_ids])
  out.append(features)
print("FEATURES" + json.dumps(out))
"""


def test_preprocessor_matches_gr_convert_single_example(data_dir, uncased_vocab, cased_vocab,
                                                        tmp_path):
  """[CLS] a [SEP] (b [SEP]), truncation and padding as GR's run_classifier (run in a subprocess)."""
  with open(os.path.join(data_dir, "glue", "MRPC", "dev.tsv"), encoding="utf-8") as f:
    rows = [line.rstrip("\n").split("\t") for line in f][1:40]
  adversarial = [l for l in _adversarial_lines() if l]
  pairs = [(r[3], r[4]) for r in rows] + list(zip(adversarial[::2], adversarial[1::2]))
  singles = [(r[3], None) for r in rows] + [(l, None) for l in adversarial]
  jobs = [(vocab_file, lower, seq_length, items)
          for vocab_file, lower in ((uncased_vocab, True), (cased_vocab, False))
          for seq_length in (16, 37) for items in (pairs, singles)]
  args = tmp_path / "args.json"
  args.write_text(json.dumps(jobs))
  res = gr_reference.run_gr("run_classifier", code=_GR_FEATURES, argv=[str(args)])
  gr_out = json.loads(res.stdout.split("FEATURES", 1)[1])
  for (vocab_file, lower, seq_length, items), expected_features in zip(jobs, gr_out):
    layer = preprocessing.BertPreprocessor(vocab_file, lower, seq_length=seq_length)
    if items[0][1] is None:
      inputs = tf.constant([a for a, _ in items])
    else:
      inputs = (tf.constant([a for a, _ in items]), tf.constant([b for _, b in items]))
    got = layer(inputs)
    for j, name in enumerate(("input_ids", "input_mask", "segment_ids")):
      assert got[name].dtype == tf.int32 and got[name].shape[1] == seq_length
      expected = np.array([f[j] for f in expected_features])
      np.testing.assert_array_equal(got[name].numpy(), expected,
                                    err_msg=f"{vocab_file} seq_length={seq_length} {name}")


def test_preprocessor_tf_data_savedmodel_and_config(uncased_vocab, tmp_path):
  layer = preprocessing.BertPreprocessor(uncased_vocab, True, seq_length=12)
  a = ["The quick brown fox.", "ΟΔΟΣ café", ""]
  b = ["jumps over", "the lazy dog's back", "x"]
  eager = layer((tf.constant(a), tf.constant(b)))
  ds = tf.data.Dataset.from_tensor_slices((a, b)).batch(2).map(lambda x, y: layer((x, y)))
  batches = list(ds)
  np.testing.assert_array_equal(
      np.concatenate([x["input_ids"].numpy() for x in batches]), eager["input_ids"].numpy())

  class Serving(tf.Module):

    def __init__(self, preprocessor):
      super().__init__()
      self.preprocessor = preprocessor

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    def __call__(self, text_a, text_b):
      return self.preprocessor((text_a, text_b))

  export = str(tmp_path / "preprocessor")
  tf.saved_model.save(Serving(layer), export)
  loaded = tf.saved_model.load(export)
  served = loaded(tf.constant(a), tf.constant(b))
  for name in ("input_ids", "input_mask", "segment_ids"):
    np.testing.assert_array_equal(served[name].numpy(), eager[name].numpy())

  clone = preprocessing.BertPreprocessor.from_config(layer.get_config())
  np.testing.assert_array_equal(clone(tf.constant(a))["input_ids"].numpy(),
                                layer(tf.constant(a))["input_ids"].numpy())
