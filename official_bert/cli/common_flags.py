"""Flags shared by the run scripts (GR's names and defaults, plus ours), defined once, and the
checks and run steps every job shares.

A script calls `define_common_flags()` (and `define_eval_flags()` / `define_predict_flags()` if
it has those modes), then in `main`: `check_modes`, `bert_config(FLAGS)`, `strategy =
setup(FLAGS)` before building anything, its task (official_bert.tasks) from the flags, and
`train_or_restore(FLAGS, task, strategy)` for the model to evaluate / predict with.
"""

import os

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from official_bert import configs, optimization, tokenization
from official_bert.tasks import base
from official_bert.training import distribute
from official_bert.training import loop
from official_bert import progress

FLAGS = flags.FLAGS


def define_common_flags():
  """Flags every GR script has (same defaults), GR's TPU flags, and the added modern ones."""
  # GR.
  flags.DEFINE_string("bert_config_file", None,
                      "The config json file corresponding to the pre-trained BERT model. "
                      "This specifies the model architecture.")
  flags.DEFINE_string("output_dir", None,
                      "The output directory where the model checkpoints will be written.")
  flags.DEFINE_string("init_checkpoint", None,
                      "Initial checkpoint (usually from a pre-trained BERT model): GR's TF1 "
                      "checkpoint, ours, or a converted one.")
  flags.DEFINE_bool("do_train", False, "Whether to run training.")
  flags.DEFINE_integer("train_batch_size", 32, "Total batch size for training.")
  flags.DEFINE_float("learning_rate", 5e-5, "The initial learning rate for Adam.")
  flags.DEFINE_integer("save_checkpoints_steps", 1000, "How often to save the model checkpoint.")
  flags.DEFINE_integer("iterations_per_loop", 1000,
                       "How many steps to make in each estimator call (here: in each host call "
                       "of the training loop).")
  flags.DEFINE_bool("use_tpu", False, "Whether to use TPU or GPU/CPU.")
  flags.DEFINE_string("tpu_name", None,
                      "The Cloud TPU to use for training. This should be either the name used "
                      "when creating the Cloud TPU, or a grpc://ip.address.of.tpu:8470 url; "
                      "'local' on a Cloud TPU VM.")
  flags.DEFINE_string("tpu_zone", None,
                      "[Optional] GCE zone where the Cloud TPU is located in. If not specified, "
                      "we will attempt to automatically detect the GCE project from metadata.")
  flags.DEFINE_string("gcp_project", None,
                      "[Optional] Project name for the Cloud TPU-enabled project. If not "
                      "specified, we will attempt to automatically detect the GCE project from "
                      "metadata.")
  flags.DEFINE_string("master", None, "[Optional] TensorFlow master URL.")
  flags.DEFINE_integer("num_tpu_cores", 8,
                       "Only used if `use_tpu` is True. Total number of TPU cores to use "
                       "(checked against the cores the TPU reports).")
  # Added.
  flags.DEFINE_enum("distribution_strategy", None, list(distribute.STRATEGIES),
                    "tf.distribute strategy; default one_device, or tpu if --use_tpu. "
                    "multi_worker_mirrored reads the cluster from $TF_CONFIG.")
  flags.DEFINE_enum("mixed_precision", "float32", list(distribute.PRECISIONS),
                    "Compute dtype (variables stay float32); float16 adds dynamic loss scaling.")
  flags.DEFINE_bool("jit_compile", False, "XLA-compile the forward and backward pass.")
  flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"],
                    "adamw: GR's AdamWeightDecay; lamb: LAMB (Model Garden / NVIDIA).")
  # Ours: GR's AdamWeightDecay has no bias correction; Model Garden's (and HF's AdamW) do. GR's
  # update stays the default: measured over seeds it is not what loses to HF (docs/DESIGN.md).
  flags.DEFINE_bool("adam_bias_correction", False,
                    "--optimizer=adamw with Adam's bias correction (Model Garden's "
                    "AdamWeightDecay, as HF's AdamW). False: GR's exact update, whose early "
                    "steps are 1.3-6x larger than the learning rate's for the first ~1,000 "
                    "steps (docs/DESIGN.md).")
  flags.DEFINE_integer("gradient_accumulation_steps", 1,
                       "Split each train batch into this many micro-batches and apply their "
                       "mean gradient once (train_batch_size stays the batch per update).")
  flags.DEFINE_integer("steps_per_loop", None, "Alias of --iterations_per_loop.")
  flags.DEFINE_integer("keep_checkpoint_max", 5, "How many recent checkpoints to keep.")
  flags.DEFINE_integer("seed", 12345, "Seed for weight initialization, dropout and shuffling.")
  define_progress_flag("a progress line (step/total, loss, learning rate, examples/s, ETA)",
                       "one line per --iterations_per_loop steps only")
  flags.DEFINE_integer("save_summary_steps", 100, "Write TensorBoard train scalars (output_dir/"
                       "train) every N steps.")


def define_progress_flag(what="a line (current stage, elapsed time, units done/total)",
                         zero="a line when each stage starts only"):
  """--progress_interval_secs: the longest wall time between two progress lines."""
  flags.DEFINE_float("progress_interval_secs", progress.DEFAULT_INTERVAL_SECS,
                     f"Log {what} at least this often, in seconds of wall time. 0: {zero}.")


def define_finetuning_flags(max_seq_length=128):
  """GR's flags shared by run_classifier, run_squad and run_ner (max_seq_length's default
  differs: 128, 384 for SQuAD)."""
  flags.DEFINE_string("vocab_file", None, "The vocabulary file that the BERT model was trained on.")
  flags.DEFINE_bool("do_lower_case", True, "Whether to lower case the input text. Should be True "
                    "for uncased models and False for cased models.")
  flags.DEFINE_integer("max_seq_length", max_seq_length, "The maximum total input sequence "
                       "length after WordPiece tokenization. Sequences longer than this are "
                       "truncated (split into windows for SQuAD and NER), shorter ones padded.")
  flags.DEFINE_float("num_train_epochs", 3.0, "Total number of training epochs to perform.")
  flags.DEFINE_float("warmup_proportion", 0.1, "Proportion of training to perform linear "
                     "learning rate warmup for. E.g., 0.1 = 10% of training.")
  # Ours (ELECTRA's fine-tuning recipe; GR has none): 1.0 = GR's single rate.
  flags.DEFINE_float("layerwise_lr_decay", 1.0, "Layer-wise learning-rate decay: the task head "
                     "trains at --learning_rate and each layer below at this factor times the "
                     "one above (ELECTRA uses 0.8). 1.0: one rate for all, as GR.")


def define_eval_flags():
  flags.DEFINE_bool("do_eval", False, "Whether to run eval on the dev set.")
  flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")


def define_periodic_eval_flags(default_metric):
  """Evaluation during training; `default_metric`: the job's main dev metric."""
  flags.DEFINE_integer("eval_every_steps", 0, "Evaluate on the dev set every N training steps "
                       "and at the end (eval/ TensorBoard scalars, eval_history.jsonl). 0: no "
                       "periodic evaluation.")
  flags.DEFINE_bool("keep_best_checkpoint", False, "With --eval_every_steps, keep the model of "
                    "the best evaluation (on --best_metric) in output_dir/best/ with its "
                    "eval_results.txt. output_dir/eval_results.txt stays the final model's.")
  flags.DEFINE_string("best_metric", default_metric, "The eval metric --keep_best_checkpoint "
                      "maximizes (minimizes if its name contains 'loss').")


def check_periodic_eval(flags_obj):
  """Usage errors of the periodic-eval flags, before any work."""
  if flags_obj.keep_best_checkpoint and not flags_obj.eval_every_steps:
    raise app.UsageError("--keep_best_checkpoint needs --eval_every_steps=N (how often to "
                         "evaluate)")
  if flags_obj.eval_every_steps and not flags_obj.do_train:
    raise app.UsageError("--eval_every_steps evaluates during training: add --do_train")


def define_predict_flags():
  flags.DEFINE_bool("do_predict", False, "Whether to run the model in inference mode.")
  flags.DEFINE_integer("predict_batch_size", 8, "Total batch size for predict.")


def strategy_name(flags_obj):
  if flags_obj.use_tpu:
    if flags_obj.distribution_strategy not in (None, "tpu"):
      raise ValueError(f"--use_tpu with --distribution_strategy="
                       f"{flags_obj.distribution_strategy}: drop one of them")
    return "tpu"
  return flags_obj.distribution_strategy or "one_device"


def steps_per_loop(flags_obj):
  return flags_obj.steps_per_loop or flags_obj.iterations_per_loop


def setup(flags_obj):
  """Seeds, the precision policy and the strategy from the flags; call before building models."""
  import keras  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(flags_obj.seed)
  policy = distribute.set_precision(flags_obj.mixed_precision)
  try:
    strategy = distribute.get_strategy(strategy_name(flags_obj), tpu_name=flags_obj.tpu_name,
                                       tpu_zone=flags_obj.tpu_zone,
                                       gcp_project=flags_obj.gcp_project, master=flags_obj.master)
  except ValueError as e:  # no TPU, a bad TF_CONFIG: one line, no traceback
    raise SystemExit(f"error: {e}") from None
  if strategy_name(flags_obj) == "tpu" and (
      strategy.num_replicas_in_sync != flags_obj.num_tpu_cores):
    logging.warning("--num_tpu_cores=%d but the TPU has %d cores; using %d",
                    flags_obj.num_tpu_cores, strategy.num_replicas_in_sync,
                    strategy.num_replicas_in_sync)
  logging.info("dtype policy %s, jit_compile=%s", policy, flags_obj.jit_compile)
  return strategy


def optimizer_fn(flags_obj, num_train_steps, num_warmup_steps):
  """() -> the optimizer the shared flags ask for (loop.train calls it in scope)."""
  return lambda: optimization.create_optimizer(
      flags_obj.learning_rate, num_train_steps, num_warmup_steps,
      optimizer_type=flags_obj.optimizer, mixed_precision=flags_obj.mixed_precision,
      layerwise_lr_decay=getattr(flags_obj, "layerwise_lr_decay", 1.0),  # fine-tuning only
      adam_bias_correction=flags_obj.adam_bias_correction)


def run_settings(flags_obj, num_train_steps, output_dir=None):
  """training.loop.RunSettings from the shared flags."""
  return loop.RunSettings(
      output_dir=output_dir or flags_obj.output_dir,
      num_train_steps=num_train_steps,
      train_batch_size=flags_obj.train_batch_size,
      steps_per_loop=steps_per_loop(flags_obj),
      save_checkpoints_steps=flags_obj.save_checkpoints_steps,
      keep_checkpoint_max=flags_obj.keep_checkpoint_max,
      gradient_accumulation_steps=flags_obj.gradient_accumulation_steps,
      jit_compile=flags_obj.jit_compile,
      progress_interval_secs=flags_obj.progress_interval_secs,
      save_summary_steps=flags_obj.save_summary_steps,
      eval_every_steps=getattr(flags_obj, "eval_every_steps", 0),
      best_metric=(flags_obj.best_metric if getattr(flags_obj, "keep_best_checkpoint", False)
                   else None),
      run_config=job_flags(flags_obj))


def job_flags(flags_obj):
  """{name: value} of the job's own flags (not absl's or TF's), for the run's config summary."""
  return {f.name: f.value for module, fl in flags_obj.flags_by_module_dict().items()
          if "official_bert" in module or "run_scripts" in module for f in fl}


# ---------------------------------------------------------------------------- checks


def check_modes(flags_obj, modes=("train", "eval", "predict")):
  """GR's check: at least one of the job's --do_<mode> flags."""
  names = [f"--do_{m}" for m in modes]
  if not any(flags_obj[n[2:]].value for n in names):
    raise app.UsageError(f"At least one of {', '.join(names[:-1])} or {names[-1]} must be True.")


def check_finetuning(flags_obj, modes=("train", "eval", "predict")):
  """The modes, and --do_lower_case against the checkpoint's name (GR's check)."""
  check_modes(flags_obj, modes)
  tokenization.validate_case_matches_checkpoint(flags_obj.do_lower_case,
                                                flags_obj.init_checkpoint)


def bert_config(flags_obj):
  """The model config of --bert_config_file, checked against --max_seq_length."""
  config = configs.BertConfig.from_json_file(flags_obj.bert_config_file)
  if flags_obj.max_seq_length > config.max_position_embeddings:
    raise app.UsageError(
        f"--max_seq_length={flags_obj.max_seq_length} exceeds max_position_embeddings="
        f"{config.max_position_embeddings} of {flags_obj.bert_config_file}")
  return config


def write_bert_config(flags_obj, config, strategy):
  """Creates --output_dir and (chief) writes the run's bert_config.json there."""
  tf.io.gfile.makedirs(flags_obj.output_dir)
  if distribute.is_chief(strategy):
    config.to_json_file(os.path.join(flags_obj.output_dir, "bert_config.json"))


# ---------------------------------------------------------------------------- run steps


def train_steps(flags_obj, num_examples=None):
  """(num_train_steps, num_warmup_steps): --num_train_steps where set, else GR's count from
  --num_train_epochs; warmup --num_warmup_steps where the job has it, else
  --warmup_proportion of the steps."""
  steps = flags_obj["num_train_steps"].value if "num_train_steps" in flags_obj else 0
  if not steps:
    steps = base.num_train_steps(num_examples, flags_obj.train_batch_size,
                                 flags_obj.num_train_epochs)
    if steps < 1:
      raise app.UsageError(f"{num_examples} training examples x --num_train_epochs="
                           f"{flags_obj.num_train_epochs} make no step of --train_batch_size="
                           f"{flags_obj.train_batch_size}")
  if "num_warmup_steps" in flags_obj:
    return steps, flags_obj.num_warmup_steps
  return steps, int(steps * flags_obj.warmup_proportion)


def train(flags_obj, task, strategy):
  """Trains `task` (an official_bert.tasks object) with the shared flags; returns the model."""
  dataset_fn, num_examples = task.train_data(flags_obj.train_batch_size)
  num_train_steps, num_warmup_steps = train_steps(flags_obj, num_examples)
  logging.info("  Num steps = %d (warmup %d)", num_train_steps, num_warmup_steps)
  eval_fn = None
  if getattr(flags_obj, "eval_every_steps", 0):  # the task's dev evaluation, during training
    # SQuAD has GR's predict flags only: it evaluates its (labelled) --predict_file.
    batch = flags_obj.eval_batch_size if "eval_batch_size" in flags_obj else (
        flags_obj.predict_batch_size)
    eval_fn = lambda model, step: task.evaluate(strategy, model, batch)
  return loop.train(
      task.loop_task, strategy, dataset_fn,
      optimizer_fn=optimizer_fn(flags_obj, num_train_steps, num_warmup_steps),
      settings=run_settings(flags_obj, num_train_steps),
      init_fn=base.encoder_init_fn(flags_obj.init_checkpoint), eval_fn=eval_fn)


def train_or_restore(flags_obj, task, strategy):
  """--do_train: the trained model; else the newest checkpoint of --output_dir (or the encoder of
  --init_checkpoint) for eval / predict."""
  if flags_obj.do_train:
    return train(flags_obj, task, strategy)
  return loop.restore_for_inference(task.loop_task, strategy, flags_obj.output_dir,
                                    flags_obj.init_checkpoint)
