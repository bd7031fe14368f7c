"""Pre-training TFRecords decoded back to tokens and validated against GR's schema
(`bert-inspect-tfrecords`, official_bert.cli.inspect_tfrecords)."""


def validate_example(example, max_seq_length, max_predictions_per_seq):
  """tf.train.Example -> list of problems (empty when it matches GR's schema and invariants)."""
  f = example.features.feature
  problems = []
  sizes = {"input_ids": max_seq_length, "input_mask": max_seq_length,
           "segment_ids": max_seq_length, "masked_lm_positions": max_predictions_per_seq,
           "masked_lm_ids": max_predictions_per_seq, "masked_lm_weights": max_predictions_per_seq,
           "next_sentence_labels": 1}
  if set(f.keys()) != set(sizes):
    return [f"features {sorted(f.keys())}, expected {sorted(sizes)}"]
  for name, size in sizes.items():
    kind = f[name].WhichOneof("kind")
    want = "float_list" if name == "masked_lm_weights" else "int64_list"
    if kind != want:
      problems.append(f"{name} is {kind}, expected {want}")
      continue
    n = len(getattr(f[name], kind).value)
    if n != size:
      problems.append(f"{name} has {n} values, expected {size}")
  if problems:
    return problems
  mask = list(f["input_mask"].int64_list.value)
  n = sum(mask)
  if mask != [1] * n + [0] * (max_seq_length - n):
    problems.append("input_mask is not ones then zeros")
  seg = list(f["segment_ids"].int64_list.value)
  if any(s not in (0, 1) for s in seg) or any(seg[n:]):
    problems.append("segment_ids not in {0,1} or non-zero in padding")
  w = list(f["masked_lm_weights"].float_list.value)
  k = int(sum(w))
  if w != [1.0] * k + [0.0] * (max_predictions_per_seq - k):
    problems.append("masked_lm_weights is not ones then zeros")
  pos = list(f["masked_lm_positions"].int64_list.value)[:k]
  if pos != sorted(set(pos)) or any(not 0 < p < n for p in pos):
    problems.append("masked_lm_positions not increasing inside the sequence")
  if f["next_sentence_labels"].int64_list.value[0] not in (0, 1):
    problems.append("next_sentence_labels not 0/1")
  return problems


def format_example(example, inv_vocab):
  """One line of tokens; masked positions as `shown{original}`; segment B after ' || '."""
  f = example.features.feature
  n = sum(f["input_mask"].int64_list.value)
  ids = f["input_ids"].int64_list.value[:n]
  seg = f["segment_ids"].int64_list.value[:n]
  k = int(sum(f["masked_lm_weights"].float_list.value))
  originals = dict(zip(f["masked_lm_positions"].int64_list.value[:k],
                       f["masked_lm_ids"].int64_list.value[:k]))
  out = []
  for i, t in enumerate(ids):
    if i and seg[i] != seg[i - 1]:
      out.append("||")
    tok = inv_vocab.get(t, f"<{t}>")
    out.append(f"{tok}{{{inv_vocab.get(originals[i], originals[i])}}}" if i in originals else tok)
  nsp = f["next_sentence_labels"].int64_list.value[0]
  return f"[is_random_next={bool(nsp)}] " + " ".join(out)


def inspect(path, max_seq_length, max_predictions_per_seq, inv_vocab=None, num_examples=5,
            print_fn=print):
  """Validates every record of `path`; prints the first `num_examples`. Returns the count."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  count = 0
  for count, raw in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator(), 1):
    example = tf.train.Example.FromString(raw)
    problems = validate_example(example, max_seq_length, max_predictions_per_seq)
    if problems:
      raise ValueError(f"{path}: record {count - 1}: " + "; ".join(problems))
    if inv_vocab is not None and count <= num_examples:
      print_fn(format_example(example, inv_vocab))
  return count
