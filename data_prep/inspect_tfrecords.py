"""The TFRecord inspection command line; the job is official_bert.cli.inspect_tfrecords."""

from official_bert.cli import inspect_tfrecords

if __name__ == "__main__":
  inspect_tfrecords.run()
