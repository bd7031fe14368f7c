"""Protobuf and TFRecord wire format of pre-training records, written and read without TensorFlow.

  * `ExampleEncoder`: one instance -> a serialized tf.train.Example whose bytes equal
    `SerializeToString(deterministic=True)` (feature keys sorted, packed lists), built from
    precomputed varints instead of one protobuf object per instance.
  * `VarintTable`: packed varints of many values at once (numpy), for the scale mode.
  * TFRecord framing (`frame`, `frame_header`, `masked_crc32c`; crc32c from google-crc32c) and a
    decoder of one Example (`decode_example`) for the logs, so data prep never needs TensorFlow
    for local files.
"""

import struct

import google_crc32c

from official_bert.data.pretraining import FEATURE_NAMES

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


def varint(n):
  """Protobuf's base-128 varint of a non-negative int."""
  out = bytearray()
  while n >= 0x80:
    out.append((n & 0x7F) | 0x80)
    n >>= 7
  out.append(n)
  return bytes(out)


class ExampleEncoder(object):
  """Instance -> serialized tf.train.Example, byte-stable (keys sorted, packed lists)."""

  def __init__(self, max_seq_length, max_predictions_per_seq, vocab_size):
    self.s = max_seq_length
    self.p = max_predictions_per_seq
    # Varints of every value or length we can meet: ids < vocab_size, payloads < 4 * S.
    self._v = [varint(i) for i in range(max(vocab_size, 4 * max_seq_length + 64, 256))]
    self._zeros = b"\x00" * (4 * max(max_seq_length, max_predictions_per_seq))
    self._ones = b"\x01" * max_seq_length
    self._one_f = struct.pack("<f", 1.0)

    def entry_prefix(key, kind_tag):
      # map entry: key (field 1) + value Feature (field 2) whose oneof field is `kind_tag`.
      return b"\x0a" + varint(len(key)) + key.encode() + b"\x12", kind_tag

    self._keys = {name: entry_prefix(name, b"\x12" if name == "masked_lm_weights" else b"\x1a")
                  for name in FEATURE_NAMES}
    # Fields whose payload length is fixed get their whole entry header precomputed.
    fixed = {"input_mask": max_seq_length, "segment_ids": max_seq_length,
             "masked_lm_weights": 4 * max_predictions_per_seq, "next_sentence_labels": 1}
    self.fixed_headers = {name: self.entry_header(name, n) for name, n in fixed.items()}

  def entry(self, name, payload):
    """One map entry `name -> Feature{<kind>_list{value: payload (packed)}}`."""
    v = self._v
    prefix, kind = self._keys[name]
    lst = b"\x0a" + v[len(payload)] + payload            # Int64List / FloatList, field 1 packed
    feat = kind + v[len(lst)] + lst                       # Feature oneof
    ent = prefix + v[len(feat)] + feat                    # map<string, Feature> entry
    return b"\x0a" + v[len(ent)] + ent                    # Features.feature (field 1)

  def entry_header(self, name, length):
    """The bytes of `entry(name, payload)` before a payload of `length` bytes."""
    return self.entry(name, b"\x00" * length)[:-length or None]

  def encode(self, input_ids, num_a, masked_lm_positions, masked_lm_ids, is_random_next):
    """input_ids: unpadded [L] (after masking); num_a: tokens with segment 0 ([CLS] A [SEP])."""
    v, s, p, zeros = self._v, self.s, self.p, self._zeros
    n = len(input_ids)
    k = len(masked_lm_positions)
    pad = s - n
    head = self.fixed_headers
    ones = self._ones
    # Keys in sorted order, as protobuf's deterministic serialization writes map entries.
    body = b"".join((
        self.entry("input_ids", b"".join(map(v.__getitem__, input_ids)) + zeros[:pad]),
        head["input_mask"], ones[:n], zeros[:pad],
        self.entry("masked_lm_ids",
                   b"".join(map(v.__getitem__, masked_lm_ids)) + zeros[:p - k]),
        self.entry("masked_lm_positions",
                   b"".join(map(v.__getitem__, masked_lm_positions)) + zeros[:p - k]),
        head["masked_lm_weights"], self._one_f * k, zeros[:4 * (p - k)],
        head["next_sentence_labels"], v[1] if is_random_next else v[0],
        head["segment_ids"], zeros[:num_a], ones[:n - num_a], zeros[:pad],
    ))
    return b"\x0a" + v[len(body)] + body                  # Example.features (field 1)


# ---------------------------------------------------------------------------------------------
# Decoding (for logs): the subset of the wire format that tf.train.Example uses.
# ---------------------------------------------------------------------------------------------


def _read_varint(buf, i):
  shift = value = 0
  while True:
    b = buf[i]
    i += 1
    value |= (b & 0x7F) << shift
    if b < 0x80:
      return value, i
    shift += 7


def _fields(buf):
  """(field number, wire type, value) of a message: ints for varints, bytes for the rest."""
  i, n = 0, len(buf)
  while i < n:
    key, i = _read_varint(buf, i)
    field, wire = key >> 3, key & 7
    if wire == 0:
      value, i = _read_varint(buf, i)
    elif wire == 2:
      size, i = _read_varint(buf, i)
      value, i = bytes(buf[i:i + size]), i + size
    elif wire == 5:
      value, i = bytes(buf[i:i + 4]), i + 4
    elif wire == 1:
      value, i = bytes(buf[i:i + 8]), i + 8
    else:
      raise ValueError(f"unsupported protobuf wire type {wire}")
    yield field, wire, value


def _list_values(buf, kind):
  """Values of an Int64List (kind 3), FloatList (2) or BytesList (1), packed or not."""
  out = []
  for _, wire, value in _fields(buf):
    if kind == 1:
      out.append(value)
    elif kind == 2:
      out.extend(struct.unpack(f"<{len(value) // 4}f", value) if wire == 2 else
                 struct.unpack("<f", value))
    elif wire == 2:
      j = 0
      while j < len(value):
        x, j = _read_varint(value, j)
        out.append(x - (1 << 64) if x >= 1 << 63 else x)
    else:
      out.append(value - (1 << 64) if value >= 1 << 63 else value)
  return out


def decode_example(record):
  """Serialized tf.train.Example -> {feature name: list of values}."""
  features = {}
  for field, _, feats in _fields(record):
    if field != 1:
      continue
    for _, _, entry in _fields(feats):
      name, values = None, []
      for efield, _, evalue in _fields(entry):
        if efield == 1:
          name = evalue.decode()
        elif efield == 2:
          for kind, _, lst in _fields(evalue):
            values = _list_values(lst, kind)
      features[name] = values
  return features


# ---------------------------------------------------------------------------------------------
# Many varints at once, and TFRecord framing.
# ---------------------------------------------------------------------------------------------


class VarintTable(object):
  """Packed varints of many values at once, by table lookup (values < `size` < 2^28)."""

  def __init__(self, size):
    import numpy as np  # pylint: disable=import-outside-toplevel  (compat mode runs without it)
    v = np.arange(size, dtype=np.uint32)
    self.nbytes = (1 + (v >= 1 << 7).astype(np.int8) + (v >= 1 << 14)
                   + (v >= 1 << 21)).astype(np.int8)                    # [size]
    # Each value's varint bytes, little-endian in one uint32 (one gather per value, not 4).
    self.packed = np.zeros(size, "<u4")
    for i in range(4):
      byte = (v >> (7 * i)) & 0x7F
      byte |= (i < self.nbytes - 1).astype(np.uint32) << 7               # continuation bit
      self.packed |= byte << (8 * i)

  def rows(self, values):
    """values [N, W] -> (bytes uint8 [sum], bytes per row [N]): each row's values packed."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    n, w = values.shape
    top = int(values.max()) if values.size else 0
    if top >= len(self.nbytes):
      raise ValueError(f"value {top} >= varint table size {len(self.nbytes)}")
    if top < 1 << 7:  # one byte each: the values themselves (e.g. positions < 128)
      return values.astype(np.uint8).reshape(-1), np.full(n, w, np.int64)
    nb = self.nbytes[values].reshape(-1)                                  # [N*W]
    ends = np.cumsum(nb, dtype=np.int64)
    starts = ends - nb
    packed = self.packed[values].reshape(-1)                              # [N*W]
    # Byte j of every value goes to starts + j, highest j first: a value shorter than j bytes
    # writes past its end, into a later value's byte k < j, which the pass for k rewrites.
    out = np.empty(int(ends[-1]) + 4, np.uint8)
    for j in range(int(self.nbytes[top]) - 1, -1, -1):  # nbytes grows with the value
      out[starts + j] = (packed >> (8 * j)).astype(np.uint8)
    return out[:int(ends[-1])], nb.reshape(n, w).sum(axis=1, dtype=np.int64)


def mask_crc(crc):
  """TFRecord's checksum of a crc32c: rotated right by 15 bits plus a constant."""
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def masked_crc32c(data):
  """TFRecord's checksum of `data`."""
  return mask_crc(google_crc32c.value(data))


def frame_header(length):
  """TFRecord framing before a record of `length` bytes: the length and its checksum."""
  head = _U64.pack(length)
  return head + _U32.pack(masked_crc32c(head))


def frame(record):
  """One record in TFRecord framing (as tf.io.TFRecordWriter writes it)."""
  return b"".join((frame_header(len(record)), record, _U32.pack(masked_crc32c(record))))

