"""Shared test fixtures: the data directory, GR's code as an oracle, the real MiniLM files."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from official_bert import utils  # pylint: disable=wrong-import-position


def pytest_configure(config):
  config.addinivalue_line(
      "markers", "slow: minutes-long exhaustive checks, run with `pytest -m slow` (not in CI)")


@pytest.fixture(scope="session")
def data_dir():
  d = utils.data_dir()
  if not os.path.isdir(d):
    pytest.fail(f"shared data not found at {d}; set OFFICIAL_BERT_DATA")
  return d


@pytest.fixture(scope="session")
def uncased_vocab(data_dir):
  return os.path.join(data_dir, "vocab", "bert-base-uncased-vocab.txt")


@pytest.fixture(scope="session")
def cased_vocab(data_dir):
  return os.path.join(data_dir, "vocab", "bert-base-cased-vocab.txt")
