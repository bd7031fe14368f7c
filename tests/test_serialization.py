"""Keras-native serialisation: every layer's config round trip, `.keras` files bit-exact."""

import inspect

import keras
import numpy as np
import pytest

from official_bert import checkpoints, configs, encoder, layers, models

TINY = configs.BertConfig(vocab_size=53, hidden_size=20, num_hidden_layers=2,
                          num_attention_heads=4, intermediate_size=27, max_position_embeddings=17,
                          type_vocab_size=2, hidden_dropout_prob=0.2,
                          attention_probs_dropout_prob=0.3, initializer_range=0.05)
GR = dict(hidden_size=20, num_attention_heads=4, intermediate_size=27, hidden_act="relu",
          hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.3, initializer_range=0.05)


def _layer_instances():
  """One instance of every Keras layer class in official_bert.layers, non-default arguments."""
  g = GR
  return [
      layers.Dropout(0.25, seed=4),
      layers.SelfAttention(g["num_attention_heads"], g["hidden_size"],
                           g["attention_probs_dropout_prob"], g["initializer_range"]),
      layers.DenseResidualNorm(g["hidden_size"], g["hidden_dropout_prob"],
                               g["initializer_range"]),
      layers.AttentionBlock(g["num_attention_heads"], g["hidden_size"],
                            g["attention_probs_dropout_prob"], g["hidden_dropout_prob"],
                            g["initializer_range"]),
      layers.BertEmbeddings(53, 20, 2, 17, 0.2, 0.05),
      layers.Intermediate(27, "relu", 0.05),
      layers.TransformerLayer(name="layer_3", **g),
      layers.TransformerEncoder(3, **g),
      layers.Pooler(20, 0.05),
      layers.OutputProjection(3, 0.05, name="squad"),
      layers.MaskedLMTransform(20, "relu", 0.05),
      layers.MaskedLMHead(53, 20, "relu", 0.05),
      layers.PretrainingHeads(53, 20, "relu", 0.05),
      layers.SpanHead(0.05),
  ]


def test_every_layer_is_registered_and_its_config_round_trips():
  instances = _layer_instances()
  classes = {type(x) for x in instances}
  # Every layer class the package defines is covered here (so a new one must be added).
  defined = {c for _, c in inspect.getmembers(layers, inspect.isclass)
             if issubclass(c, keras.layers.Layer) and c.__module__.startswith("official_bert")
             and "preprocessing" not in c.__module__}
  assert defined == classes, defined ^ classes
  for layer in instances:
    cls = type(layer)
    assert keras.saving.get_registered_name(cls) == f"official_bert>{cls.__name__}"
    config = layer.get_config()
    # Through the registry (as load_model does), not by calling the class directly.
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is cls
    assert clone.get_config() == config, cls.__name__
    assert clone.name == layer.name
  # GR's config names, with the values given.
  config = layers.TransformerEncoder(3, **GR).get_config()
  assert {k: config[k] for k in GR} == GR and config["num_hidden_layers"] == 3


def _features(rng):
  ids = rng.integers(1, TINY.vocab_size, (2, 7)).astype(np.int32)
  mask = np.ones_like(ids)
  mask[1, 4:] = 0
  return dict(input_ids=ids * mask, input_mask=mask,
              segment_ids=np.array([[0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 0, 0, 0]], np.int32),
              masked_lm_positions=np.array([[1, 5], [2, 3]], np.int32))


MODELS = {
    "bert": lambda: encoder.BertModel(TINY),
    "pretrainer": lambda: models.BertPretrainer(TINY),
    "classifier": lambda: models.BertClassifier(TINY, 3, dropout_prob=0.3),
    "classifier_mean": lambda: models.BertClassifier(TINY, 1, pooling="mean"),
    "token_classifier": lambda: models.BertTokenClassifier(TINY, 5),
    "span_labeler": lambda: models.BertSpanLabeler(TINY),
}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_keras_file_round_trip_is_bit_exact(kind, tmp_path):
  model = MODELS[kind]()
  features = _features(np.random.default_rng(0))
  before = keras.tree.map_structure(np.asarray, model(features))
  path = str(tmp_path / f"{kind}.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  assert type(loaded) is type(model) and loaded.name == model.name
  assert loaded.get_config() == model.get_config()
  after = keras.tree.map_structure(np.asarray, loaded(features))
  keras.tree.map_structure(lambda a, b: np.testing.assert_array_equal(a, b), before, after)
  # The same GR-named variables, equal bit for bit; a fresh model of the same config differs,
  # so the equality above comes from the file.
  saved, again = checkpoints.get_weights(model), checkpoints.get_weights(loaded)
  assert sorted(saved) == sorted(again)
  for name in saved:
    assert np.array_equal(saved[name], again[name]), name
  fresh = keras.tree.flatten(MODELS[kind]()(features))
  assert not all(np.array_equal(a, b) for a, b in zip(keras.tree.flatten(after), fresh))
  # The classifier's settings survive (pooling, labels, dropout rate).
  if isinstance(model, models.BertClassifier):
    assert (loaded.num_labels, loaded.dropout.rate) == (model.num_labels, model.dropout.rate)
    assert getattr(loaded, "pooling") == model.pooling


def test_models_take_grs_config_dict():
  """A model's config is GR's bert_config.json dict; a dict builds the same model."""
  model = models.BertSpanLabeler(TINY.to_dict())
  assert model.config == TINY
  assert model.get_config()["config"] == TINY.to_dict()
  with pytest.raises(ValueError, match="hidden_sizes"):
    encoder.BertModel(dict(TINY.to_dict(), hidden_sizes=3))
