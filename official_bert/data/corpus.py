"""Raw corpora -> GR's pre-training input: one sentence per line, a blank line between documents.

The formats (`FORMATS`), the rule-based sentence splitter and the GLUE-task corpus of
`bert-prepare-corpus` (official_bert.cli.prepare_corpus, whose docstring describes them).
"""

import itertools
import re

from absl import logging

from official_bert import errors
from official_bert import utils
from official_bert.data import gr_instances

FORMATS = ("wikiextractor", "wikitext", "gutenberg", "lines")

# Words ending in "." that rarely end a sentence.
_ABBREVIATIONS = frozenset("""
mr mrs ms dr prof st sr jr vs etc e.g i.e cf al fig figs no nos vol vols ed eds pp p approx
gen col lt sgt capt cmdr adm gov rev hon inc ltd co corp dept univ est jan feb mar apr jun jul
aug sep sept oct nov dec mt ft u.s u.k u.n a.d b.c ca c
""".split())

# A candidate boundary: ., ! or ? (plus closing quotes/brackets), whitespace, then a plausible start.
_BOUNDARY_RE = re.compile(r"""([.!?]+["'\u201d\u2019)\]]*)\s+(?=["'\u201c\u2018(\[]?[A-Z0-9\u00C0-\u024F])""")


def split_sentences(paragraph):
  """Rule-based sentence splitter: 'He left. Mr. Smith stayed.' -> ['He left.', 'Mr. Smith stayed.']."""
  sentences = []
  start = 0
  for m in _BOUNDARY_RE.finditer(paragraph):
    head = paragraph[start:m.end(1)]
    words = head.split()
    last = words[-1].lower().rstrip(".!?\"')]\u201d\u2019") if words else ""
    if m.group(1).startswith(".") and (
        last.lstrip("(\"'") in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last)):
      continue  # an abbreviation or an initial ("J. Smith"), not a sentence end
    sentences.append(head.strip())
    start = m.end()
  tail = paragraph[start:].strip()
  if tail:
    sentences.append(tail)
  return [s for s in sentences if s]


def _paragraph_documents(lines, fmt):
  """Raw lines -> documents, each a list of paragraphs."""
  if fmt == "wikiextractor":
    doc, title_pending = None, False
    for line in lines:
      s = line.strip()
      if s.startswith("<doc ") or s.startswith("<doc>"):
        doc, title_pending = [], True
      elif s == "</doc>":
        if doc is not None:
          yield doc
        doc = None
      elif doc is not None and s:
        if title_pending:  # WikiExtractor repeats the title as the first line
          title_pending = False
          continue
        doc.append(s)
    if doc:
      yield doc
  elif fmt == "wikitext":
    doc = []
    for line in lines:
      s = line.strip()
      if re.fullmatch(r"= [^=].* =", s):  # a new article
        if doc:
          yield doc
        doc = []
      elif s and not s.startswith("= ="):
        doc.append(s)
    if doc:
      yield doc
  elif fmt == "gutenberg":
    body, inside, seen_start = [], False, False
    for line in lines:
      if line.startswith("*** START OF"):
        inside, seen_start, body = True, True, []
        continue
      if line.startswith("*** END OF"):
        break
      if inside or not seen_start:
        body.append(line)
    paragraphs, para = [], []
    for line in body:
      if line.strip():
        para.append(line.strip())
      elif para:
        paragraphs.append(" ".join(para))
        para = []
    if para:
      paragraphs.append(" ".join(para))
    if paragraphs:
      yield paragraphs
  elif fmt == "lines":
    doc = []
    for line in lines:
      s = line.strip()
      if s:
        doc.append(s)
      elif doc:
        yield doc
        doc = []
    if doc:
      yield doc
  else:
    raise ValueError(f"--input_format={fmt!r}: use one of {', '.join(FORMATS)}")


def documents(lines, fmt, min_sentences=2, min_chars=50):
  """Raw lines -> documents as lists of sentences, too-short documents dropped."""
  for paragraphs in _paragraph_documents(lines, fmt):
    sentences = [s for p in paragraphs for s in split_sentences(p)]
    if len(sentences) >= min_sentences and sum(map(len, sentences)) >= min_chars:
      yield sentences


def read_lines(path):
  """Text lines of a local or remote file; invalid utf-8 bytes dropped, CRLF handled."""
  for raw in gr_instances.iter_lines(path):
    yield raw.decode("utf-8", "ignore").rstrip("\r\n")


def task_documents(task_name, data_dir):
  """A task's train examples as documents: lists of the examples' sentences (text_a, text_b)."""
  from official_bert.data import classifier  # pylint: disable=import-outside-toplevel
  examples = classifier.get_processor(task_name).get_train_examples(data_dir)
  for _, group in itertools.groupby(examples, key=lambda e: e.document or e.guid):
    yield [text.strip() for e in group for text in (e.text_a, e.text_b) if text and text.strip()]


def write_documents(docs, output_file):
  """Writes documents (lists of sentences) in GR's input format; returns (docs, sentences).

  No document at all is an error (nothing is written)."""
  num_docs = num_sentences = 0
  with utils.atomic_open(output_file, "w") as out:
    for doc in docs:
      if not doc:
        continue
      if num_docs:
        out.write("\n")
      out.write("\n".join(doc) + "\n")
      num_docs += 1
      num_sentences += len(doc)
    if not num_docs:
      raise errors.UserError("no document in the input", output_file,
                             "check --input_file / --input_format, or lower --min_sentences and "
                             "--min_chars")
  logging.info("Wrote %d documents, %d sentences to %s", num_docs, num_sentences, output_file)
  return num_docs, num_sentences


def prepare(input_files, output_file, fmt, min_sentences=2, min_chars=50):
  """Writes GR's input format for all `input_files` to `output_file`; returns (docs, sentences)."""
  docs = (doc for path in input_files
          for doc in documents(read_lines(path), fmt, min_sentences, min_chars))
  return write_documents(docs, output_file)
