"""Shared test fixtures: the data directory, GR's code as an oracle, the real MiniLM files."""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def shared_data_dir():
  """The shared data sets: $OFFICIAL_BERT_DATA, else `../shared/data` beside the repo."""
  return os.environ.get("OFFICIAL_BERT_DATA",
                        os.path.join(os.path.dirname(ROOT), "shared", "data"))


def pytest_configure(config):
  config.addinivalue_line(
      "markers", "slow: minutes-long exhaustive checks, run with `pytest -m slow` (not in CI)")


@pytest.fixture(scope="session")
def data_dir():
  d = shared_data_dir()
  if not os.path.isdir(d):
    pytest.fail(f"shared data not found at {d}; set OFFICIAL_BERT_DATA")
  return d


@pytest.fixture(scope="session")
def uncased_vocab(data_dir):
  return os.path.join(data_dir, "vocab", "bert-base-uncased-vocab.txt")


@pytest.fixture(scope="session")
def cased_vocab(data_dir):
  return os.path.join(data_dir, "vocab", "bert-base-cased-vocab.txt")
