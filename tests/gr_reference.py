"""Runs Google's original BERT code (PyPI `bert-tensorflow`, GR) as a test oracle on TF 2.

GR's code is TF1: it wants `tensorflow` to be `tensorflow.compat.v1`, `tf.contrib.layers`
(tf_slim stands in) and Keras 2 layers (TF_USE_LEGACY_KERAS=1). Swapping `tensorflow` in
sys.modules would break our own TF 2 code in the same process, so:
  * `load_gr_module("tokenization")` execs one GR module with the shim and restores sys.modules
    (fine for pure-Python modules);
  * `run_gr(module, flags)` runs a GR script in a subprocess with the shim installed (needed for
    graph-mode code such as modeling.py and create_pretraining_data.py).
Also a script: `python tests/gr_reference.py MODULE --flag=value ...`.
"""

import importlib
import importlib.util
import os
import subprocess
import sys
import types


def _install_shim():
  os.environ["TF_USE_LEGACY_KERAS"] = "1"
  import tensorflow as tf2  # pylint: disable=import-outside-toplevel
  import tf_slim  # pylint: disable=import-outside-toplevel
  tf1 = tf2.compat.v1
  contrib = types.ModuleType("tensorflow.contrib")
  contrib.layers = tf_slim.layers
  tf1.contrib = contrib
  sys.modules["tensorflow"] = tf1
  sys.modules["tensorflow.contrib"] = contrib  # `from tensorflow.contrib import layers`
  return tf2


def load_gr_module(name):
  """Imports `bert.<name>` from bert-tensorflow with `tensorflow` aliased to tf.compat.v1."""
  import tensorflow as tf2  # pylint: disable=import-outside-toplevel
  saved = sys.modules.get("tensorflow")
  try:
    _install_shim()
    sys.modules.pop(f"bert.{name}", None)
    module = importlib.import_module(f"bert.{name}")
    from absl import flags  # pylint: disable=import-outside-toplevel
    if not flags.FLAGS.is_parsed():  # GR reads flag defaults at call time
      flags.FLAGS.mark_as_parsed()
    return module
  finally:
    sys.modules["tensorflow"] = saved or tf2


def gr_available():
  return importlib.util.find_spec("bert") is not None and (
      importlib.util.find_spec("tf_slim") is not None)


def run_gr(module, argv=(), code=None, timeout=3600):
  """Runs GR's `bert.<module>` main with absl flags in a subprocess (or `code` with the shim)."""
  cmd = [sys.executable, os.path.abspath(__file__), module, *argv]
  here = os.path.dirname(os.path.abspath(__file__))  # so that `-c` code imports this module
  env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
  if code is not None:
    cmd = [sys.executable, "-c",
           "import gr_reference; gr_reference._install_shim();\n" + code, *argv]
  result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
  if result.returncode:
    raise RuntimeError(f"GR's {module} failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
  return result


if __name__ == "__main__":
  _tf2 = _install_shim()
  _module = importlib.import_module(f"bert.{sys.argv[1]}")
  from absl import app  # pylint: disable=import-outside-toplevel
  app.run(_module.main, argv=[sys.argv[1]] + sys.argv[2:])
