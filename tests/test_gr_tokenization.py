"""GR's own tokenization_test.py (bert-tensorflow 1.0.4) run against our tokenizer.

The test file is read from the installed `bert` package, its one import of GR's tokenization is
pointed at official_bert.tokenization, and its TestCase is collected here: all its tests must pass
(GR master's 9, plus 1.0.4's test_full_tokenizer_preserve_unused), unchanged otherwise (its vocab has no [MASK]: GR's tokenizer demands no special token, nor does
ours). `import tensorflow.compat.v1` is GR's test's own import; it needs no shim.
"""

import importlib.util
import os
import types

import pytest

from official_bert import tokenization as ours

GR_IMPORT = "from bert import tokenization\n"
OUR_IMPORT = "from official_bert import tokenization\n"


def _load_gr_test():
  spec = importlib.util.find_spec("bert")
  if spec is None:
    pytest.fail("GR's code (pip bert-tensorflow) is a test dependency; install requirements-test.txt")
  path = os.path.join(os.path.dirname(spec.origin), "tokenization_test.py")
  with open(path, encoding="utf-8") as f:
    source = f.read()
  assert source.count(GR_IMPORT) == 1, f"{path}: GR's import line not found"
  module = types.ModuleType("gr_tokenization_test")
  module.__file__ = path
  exec(compile(source.replace(GR_IMPORT, OUR_IMPORT), path, "exec"), module.__dict__)  # pylint: disable=exec-used
  assert module.tokenization is ours
  return module


_GR_TEST = _load_gr_test()
TokenizationTest = _GR_TEST.TokenizationTest  # collected by pytest


def test_all_gr_tests_are_collected():
  names = {n for n in vars(TokenizationTest) if n.startswith("test_")}
  master = {"test_full_tokenizer", "test_chinese", "test_basic_tokenizer_lower",
            "test_basic_tokenizer_no_lower", "test_wordpiece_tokenizer",
            "test_convert_tokens_to_ids", "test_is_whitespace", "test_is_control",
            "test_is_punctuation"}
  assert names == master | {"test_full_tokenizer_preserve_unused"}
