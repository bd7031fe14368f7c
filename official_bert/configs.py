"""BertConfig: GR's `bert_config.json`, and the HF `config.json` dialect."""

import copy
import dataclasses
import json

import tensorflow as tf

# GR's `hidden_act` names. "gelu" is GR's tanh approximation; "gelu_exact" is the erf form.
ACTIVATIONS = ("gelu", "gelu_exact", "relu", "tanh", "linear")

# HF's activation names -> ours.
_HF_TO_GR_ACT = {
    "gelu": "gelu_exact",
    "gelu_new": "gelu",
    "gelu_pytorch_tanh": "gelu",
    "gelu_fast": "gelu",
    "relu": "relu",
    "tanh": "tanh",
    "linear": "linear",
}
_GR_TO_HF_ACT = {"gelu_exact": "gelu", "gelu": "gelu_new", "relu": "relu",
                 "tanh": "tanh", "linear": "linear"}

# HF config keys we understand but that carry nothing for GR's architecture.
_HF_IGNORED = {
    "architectures", "model_type", "transformers_version", "torch_dtype", "dtype",
    "pad_token_id", "position_embedding_type", "use_cache", "classifier_dropout",
    "gradient_checkpointing", "_name_or_path", "bos_token_id", "eos_token_id",
    "is_decoder", "add_cross_attention", "chunk_size_feed_forward", "output_past",
    "tie_word_embeddings", "id2label", "label2id", "problem_type", "finetuning_task",
}


@dataclasses.dataclass
class BertConfig:
  """Hyper-parameters of a BERT encoder, named as in GR's `bert_config.json`."""

  vocab_size: int
  hidden_size: int = 768
  num_hidden_layers: int = 12
  num_attention_heads: int = 12
  intermediate_size: int = 3072
  hidden_act: str = "gelu"
  hidden_dropout_prob: float = 0.1
  attention_probs_dropout_prob: float = 0.1
  max_position_embeddings: int = 512
  type_vocab_size: int = 16
  initializer_range: float = 0.02

  def __post_init__(self):
    if self.hidden_act not in ACTIVATIONS:
      raise ValueError(f"hidden_act={self.hidden_act!r} is not one of {ACTIVATIONS}")
    if self.hidden_size % self.num_attention_heads:
      raise ValueError(
          f"hidden_size={self.hidden_size} is not a multiple of "
          f"num_attention_heads={self.num_attention_heads}")

  @classmethod
  def from_dict(cls, d, source="<dict>"):
    """From GR's dict; unknown or missing keys are errors naming `source`."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
      raise ValueError(f"{source}: unknown BERT config key(s) {unknown}; "
                       f"expected GR's keys {sorted(fields)}")
    missing = sorted(k for k in fields if k not in d)
    if missing:
      raise ValueError(f"{source}: missing BERT config key(s) {missing}")
    return cls(**{k: fields[k].type(v) if fields[k].type in (int, float) else v
                  for k, v in d.items()})

  @classmethod
  def coerce(cls, config):
    """A BertConfig from a BertConfig or GR's dict (as stored by a model's get_config)."""
    if isinstance(config, cls):
      return config
    if isinstance(config, dict):
      return cls.from_dict(config, source="model config")
    raise TypeError(f"expected a BertConfig or GR's config dict, got {type(config).__name__}")

  @classmethod
  def from_json_file(cls, path):
    """Reads GR's `bert_config.json` (or HF's `config.json`, told apart by `model_type`)."""
    with tf.io.gfile.GFile(path, "r") as f:
      try:
        d = json.load(f)
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if "model_type" in d or "layer_norm_eps" in d:
      return cls.from_hf_dict(d, source=path)
    return cls.from_dict(d, source=path)

  @classmethod
  def from_hf_dict(cls, d, source="<config.json>"):
    """From HF's BertConfig dict; keys that change the architecture must match GR's."""
    d = dict(d)
    if d.get("model_type", "bert") != "bert":
      raise ValueError(f"{source}: model_type={d['model_type']!r}, expected 'bert'")
    eps = d.pop("layer_norm_eps", 1e-12)
    if abs(eps - 1e-12) > 1e-15:
      raise ValueError(f"{source}: layer_norm_eps={eps}; GR's BERT uses 1e-12")
    pos = d.get("position_embedding_type", "absolute")
    if pos != "absolute":
      raise ValueError(f"{source}: position_embedding_type={pos!r}; only 'absolute' is BERT")
    act = d.get("hidden_act")
    if act not in _HF_TO_GR_ACT:
      raise ValueError(f"{source}: hidden_act={act!r} has no GR equivalent")
    d["hidden_act"] = _HF_TO_GR_ACT[act]
    for k in _HF_IGNORED:
      d.pop(k, None)
    return cls.from_dict(d, source=source)

  def to_dict(self):
    return dataclasses.asdict(self)

  def to_hf_dict(self):
    d = self.to_dict()
    d["hidden_act"] = _GR_TO_HF_ACT[self.hidden_act]
    d.update(model_type="bert", architectures=["BertModel"], layer_norm_eps=1e-12,
             pad_token_id=0, position_embedding_type="absolute")
    return d

  def to_json_string(self):
    return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

  def to_json_file(self, path, hf=False):
    text = (json.dumps(self.to_hf_dict(), indent=2, sort_keys=True) + "\n"
            if hf else self.to_json_string())
    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
      f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)

  def replace(self, **kw):
    return dataclasses.replace(copy.deepcopy(self), **kw)
