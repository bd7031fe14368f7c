"""tf.distribute strategies and precision policies from plain settings (no flags here).

`get_strategy("tpu", tpu_name=..., tpu_zone=..., gcp_project=...)` resolves a Cloud TPU the way GR's
TPUEstimator did (TPUClusterResolver(tpu_name, zone, project)); on a Cloud TPU VM `tpu_name="local"`
(or empty) resolves the TPU attached to the VM.
"""

import json
import os

import keras
import tensorflow as tf
from absl import logging

STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")
PRECISIONS = ("float32", "bfloat16", "float16")


def get_strategy(distribution_strategy="one_device", tpu_name=None, tpu_zone=None,
                 gcp_project=None, master=None, num_gpus=None, all_reduce_alg=None):
  """A tf.distribute.Strategy by name (one of STRATEGIES)."""
  name = (distribution_strategy or "one_device").lower()
  if name not in STRATEGIES:
    raise ValueError(f"--distribution_strategy={distribution_strategy!r}: expected one of "
                     f"{STRATEGIES}")
  if name == "tpu":
    tpu = master or tpu_name or "local"
    try:
      resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
          tpu=tpu, zone=tpu_zone, project=gcp_project)
      if tpu not in ("", "local"):
        tf.config.experimental_connect_to_cluster(resolver)
      tf.tpu.experimental.initialize_tpu_system(resolver)
    except (tf.errors.OpError, ValueError, RuntimeError) as e:
      reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
      raise ValueError(
          f"--use_tpu / --distribution_strategy=tpu: no TPU at --tpu_name={tpu!r} ({reason}); "
          "on a Cloud TPU VM pass --tpu_name=local, elsewhere drop --use_tpu "
          "(--jit_compile runs the same XLA-compiled step on CPU/GPU)") from None
    strategy = tf.distribute.TPUStrategy(resolver)
  elif name == "multi_worker_mirrored":
    # Reads the cluster from $TF_CONFIG; a missing TF_CONFIG means a cluster of one.
    if not os.environ.get("TF_CONFIG"):
      logging.warning("multi_worker_mirrored without TF_CONFIG: running as a single worker")
    else:
      try:  # fail early and clearly on malformed JSON
        json.loads(os.environ["TF_CONFIG"])
      except ValueError as e:
        raise ValueError(f"$TF_CONFIG is not valid JSON ({e})") from None
    comm = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=comm)
  elif name == "mirrored":
    gpus = tf.config.list_logical_devices("GPU")
    if num_gpus is not None:
      gpus = gpus[:num_gpus]
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    cross = None
    if all_reduce_alg == "nccl":
      cross = tf.distribute.NcclAllReduce()
    elif not gpus or all_reduce_alg == "hierarchical_copy":
      cross = tf.distribute.HierarchicalCopyAllReduce() if gpus else (
          tf.distribute.ReductionToOneDevice())
    strategy = tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross)
  else:
    gpus = tf.config.list_logical_devices("GPU")
    strategy = tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
  logging.info("Strategy %s with %d replica(s) in sync", type(strategy).__name__,
               strategy.num_replicas_in_sync)
  return strategy


def set_precision(mixed_precision="float32"):
  """Sets Keras' global dtype policy; call before building the model."""
  if mixed_precision not in PRECISIONS:
    raise ValueError(f"--mixed_precision={mixed_precision!r}: expected one of {PRECISIONS}")
  policy = {"float32": "float32", "bfloat16": "mixed_bfloat16",
            "float16": "mixed_float16"}[mixed_precision]
  keras.config.set_dtype_policy(policy)
  return policy


def is_chief(strategy):
  """True on the worker that writes checkpoints, summaries and result files."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return True
  task_type, task_id = resolver.task_type, resolver.task_id
  return task_type is None or task_type == "chief" or (
      task_type == "worker" and task_id == 0 and
      "chief" not in resolver.cluster_spec().as_dict())


def worker_id(strategy):
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return 0
  return resolver.task_id or 0


def replicas_per_pipeline(input_context):
  """How many replicas one input pipeline feeds: it yields that many batches per step."""
  return max(1, input_context.num_replicas_in_sync // input_context.num_input_pipelines)


def replica_shards(input_context=None):
  """(num_shards, shard ids) of the replicas one input pipeline feeds: one shard per replica.

  Sharding the input by global replica (not by worker process) gives every replica the same
  batches whether the N replicas sit in one process (mirrored) or in N (multi-worker), so
  training results do not depend on how replicas are spread over hosts.
  """
  if input_context is None:
    return 1, [0]
  replicas = input_context.num_replicas_in_sync
  per_pipeline = replicas_per_pipeline(input_context)
  first = input_context.input_pipeline_id * per_pipeline
  return replicas, list(range(first, first + per_pipeline))


def round_robin(datasets):
  """One pipeline feeding several replicas: element k comes from datasets[k % len(datasets)],
  the order in which tf.distribute hands a pipeline's batches to its replicas."""
  if len(datasets) == 1:
    return datasets[0]
  order = tf.data.Dataset.range(len(datasets)).repeat()
  return tf.data.Dataset.choose_from_datasets(datasets, order)
