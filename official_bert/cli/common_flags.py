"""Flags shared by the run scripts (GR's names and defaults, plus ours), defined once.

A script calls `define_common_flags()` (and `define_eval_flags()` / `define_predict_flags()` if
it has those modes), then in `main`: `strategy = setup(FLAGS)` before building anything, and
`run_settings(FLAGS, num_train_steps, output_dir)` for training.loop.
"""

from absl import flags
from absl import logging

from official_bert import optimization
from official_bert.training import distribute
from official_bert.training import loop

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
  # Ours: GR's AdamWeightDecay has no bias correction; Model Garden's (and HF's AdamW) do.
  flags.DEFINE_bool("adam_bias_correction", False,
                    "--optimizer=adamw with Adam's bias correction (Model Garden's "
                    "AdamWeightDecay). False: GR's update.")
  flags.DEFINE_integer("gradient_accumulation_steps", 1,
                       "Split each train batch into this many micro-batches and apply their "
                       "mean gradient once (train_batch_size stays the batch per update).")
  flags.DEFINE_integer("steps_per_loop", None, "Alias of --iterations_per_loop.")
  flags.DEFINE_integer("keep_checkpoint_max", 5, "How many recent checkpoints to keep.")
  flags.DEFINE_integer("seed", 12345, "Seed for weight initialization, dropout and shuffling.")


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
      jit_compile=flags_obj.jit_compile)
