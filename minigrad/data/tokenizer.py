"""BERT's WordPiece tokenizer, in pure Python: text → ids, token types and attention mask.

Follow one text through the three stages:

    "Héllo, 世界! unaffable"
      │ 1. normalize   drop control chars, whitespace → " ", pad CJK ideographs with spaces,
      │                NFD + drop non-spacing marks (accents), lower-case
      ▼ "hello,  世  界 ! unaffable"
      │ 2. pre-tokenize  split on whitespace, and cut every punctuation char out as its own word
      ▼ ["hello", ",", "世", "界", "!", "unaffable"]
      │ 3. WordPiece   greedy longest-match-first against the vocabulary; a piece that
      │                continues a word is looked up with the prefix "##"
      ▼ ["hello", ",", "世", "[UNK]", "!", "una", "##ffa", "##ble"]   (界: not in the vocabulary)

then ``[CLS] A [SEP]`` (or ``[CLS] A [SEP] B [SEP]`` for a pair) around the ids, truncation,
padding and the attention mask.

Added tokens (the special tokens, and those added with ``transformers``' ``add_tokens`` or
``additional_special_tokens``, such as ``"<ENT>"``) are found before these stages, as in
``tokenizers``: first those that are not normalized, in the raw text; then the others, in each
remaining piece once it is normalized. A piece that matched is that token's id; the rest goes
through the stages. See :class:`AddedToken`.

The files are read by :mod:`minigrad.data.tokenizer_files`: ``vocab.txt`` with
``tokenizer_config.json`` (and the added-token files), or ``tokenizer.json`` alone.

The reference is Hugging Face's ``tokenizers`` library as configured by a BERT checkpoint's
``tokenizer.json`` (``BertNormalizer``, ``BertPreTokenizer``, ``WordPiece``); the tests compare
ids with it on real and random text. Where ``tokenizers`` differs from Google's original Python
BERT tokenizer, minigrad follows ``tokenizers`` and says so where it happens:

- unassigned code points (Unicode category Cn) are kept as ordinary characters, not dropped;
- the CJK block list starts Extension E at U+2B920 (the original: U+2B820);
- lower-casing maps each character alone, so a word-final capital sigma Σ becomes σ, never ς;
- a special token written in the text (``"[MASK]"``, case-sensitive) is read as that token
  (it is an added token, not normalized);
- a pair is truncated by a closed form that gives an odd leftover token to the longer sequence
  (see :func:`longest_first_lengths`).

Speed comes from doing the per-character work with precompiled regular expressions and str
methods (which run in C), and from caching the WordPiece split of every word seen.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import string
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from minigrad.data import tokenizer_files

# The Unicode White_Space property (what Rust's `char::is_whitespace` tests). Python's
# str.isspace() differs: it also counts U+001C..U+001F, which BERT drops as control characters.
WHITESPACE = (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
              0x2028, 0x2029, 0x202F, 0x205F, 0x3000)

# CJK Unified Ideographs and their extensions, as blocks of code points. `tokenizers` starts
# Extension E at U+2B920 where Google's BERT has U+2B820; we follow `tokenizers`.
CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)
CJK = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in CJK_RANGES) + "]")

# U+FFFD, what a decoder puts where it met invalid bytes: cleaned away with the control chars.
REPLACEMENT_CHARACTER = "\ufffd"
SPACES = "".join(map(chr, WHITESPACE))


def _char_class(codepoints: Iterable[int]) -> str:
    """The body of a regex character class, ``a-z0-9``, matching exactly these code points."""
    ranges: list[list[int]] = []
    for cp in sorted(codepoints):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "".join(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
                   for lo, hi in ranges)


@functools.cache
def character_classes(max_codepoint: int = sys.maxunicode) -> dict[str, re.Pattern[str]]:
    """The regexes of the basic tokenizer for the code points 0..``max_codepoint``, built once
    from ``unicodedata``; the regex engine then tests a character against a class in C.

    - control: categories Cc (control), Cf (format), Co (private use) and Cs (surrogate), but
      not tab, newline and carriage return (whitespace to BERT); plus U+FFFD. Not Cn
      (unassigned): ``tokenizers`` keeps those, where Google's BERT drops them.
    - whitespace: White_Space characters other than the plain space.
    - mark: category Mn (non-spacing marks): the accents that NFD splits off their letters.
    - punctuation: the ASCII symbols ``!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~`` (so ``$``, ``+``
      and ``^`` count as punctuation although Unicode files them as symbols) and every
      category P* (Pc Pd Ps Pe Pi Pf Po) character.

    ``character_classes(0x7F)`` is the ASCII subset: small classes the regex engine runs
    through about three times faster, for the common case of an ASCII text. The full set
    takes one pass over all 1.1 million code points (about half a second), once per process.
    """
    control, mark, punctuation = [], [], []
    for cp in range(max_codepoint + 1):
        char = chr(cp)
        category = unicodedata.category(char)
        if ((category in ("Cc", "Cf", "Co", "Cs") and char not in "\t\n\r")
                or char == REPLACEMENT_CHARACTER):
            control.append(cp)
        elif category == "Mn":
            mark.append(cp)
        elif category[0] == "P" or char in string.punctuation:
            punctuation.append(cp)
    whitespace = [cp for cp in WHITESPACE if cp <= max_codepoint]
    space = _char_class(whitespace)
    punct = _char_class(punctuation)
    return {
        "control": re.compile(f"[{_char_class(control)}]+"),
        "whitespace": re.compile(f"[{_char_class(cp for cp in whitespace if cp != 0x20)}]"),
        "mark": re.compile(f"[{_char_class(mark)}]+") if mark else re.compile("(?!)"),
        # a word is a run of characters that are neither whitespace nor punctuation; each
        # punctuation character is a word of its own
        "word": re.compile(f"[^{space}{punct}]+|[{punct}]"),
    }


class BasicTokenizer:
    """Stages 1 and 2: normalize the text, then split it into words and punctuation.

    Args:
        do_lower_case: lower-case every character.
        strip_accents: decompose (NFD) and drop the non-spacing marks; ``None`` follows
            ``do_lower_case``, as in BERT's uncased checkpoints.
        tokenize_chinese_chars: put spaces around every CJK ideograph so that each is a word.
        clean_text: drop NUL, U+FFFD and control characters, and turn every whitespace
            character into a plain space.
    """

    def __init__(self, do_lower_case: bool = True, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True, clean_text: bool = True):
        self.do_lower_case = do_lower_case
        self.strip_accents = do_lower_case if strip_accents is None else strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.clean_text = clean_text

    def normalize(self, text: str) -> str:
        """Stage 1, in ``tokenizers``' order: clean, CJK, accents, lower case."""
        ascii_only = text.isascii()
        classes = character_classes(0x7F if ascii_only else sys.maxunicode)
        if self.clean_text:
            text = classes["control"].sub("", text)
            text = classes["whitespace"].sub(" ", text)
        if not ascii_only:  # ASCII has no CJK, no accents and is its own NFD
            if self.tokenize_chinese_chars:
                text = CJK.sub(r" \g<0> ", text)
            if self.strip_accents:
                text = classes["mark"].sub("", unicodedata.normalize("NFD", text))
        if self.do_lower_case:
            # str.lower() turns a word-final Σ into ς; tokenizers lower-cases char by char (σ)
            text = text.replace("Σ", "σ").lower()
        return text

    def split(self, text: str) -> list[str]:
        """Stage 2: the words and punctuation characters of normalized text."""
        return character_classes(0x7F if text.isascii() else sys.maxunicode)["word"].findall(text)

    def tokenize(self, text: str) -> list[str]:
        """Stages 1 and 2: ``"Don't stop!"`` → ``["don", "'", "t", "stop", "!"]``."""
        return self.split(self.normalize(text))


class WordPiece:
    """Stage 3: cut one word into vocabulary pieces, greedy longest-match-first.

    From the start of the word, take the longest prefix that is in the vocabulary, then the
    longest continuation ``"##" + rest`` that is, and so on. A word that cannot be covered this
    way, or that is longer than ``max_input_chars_per_word`` characters, becomes ``[unk_token]``
    (the whole word, not just the piece that failed):

        "unaffable" → "una" + "##ffa" + "##ble"       "a" * 101 → "[UNK]"
    """

    def __init__(self, vocab: dict[str, int], unk_token: str = "[UNK]",
                 max_input_chars_per_word: int = 100, continuing_subword_prefix: str = "##"):
        if unk_token not in vocab:
            raise ValueError(f"WordPiece: unk_token {unk_token!r} is not in the vocabulary")
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self.prefix = continuing_subword_prefix
        # no piece is longer than the longest vocabulary entry: start the search there
        self._longest = max(len(token) for token in vocab)

    def tokenize(self, word: str) -> list[str]:
        """The pieces of one word (a word from :meth:`BasicTokenizer.tokenize`)."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces = []
        start = 0
        while start < len(word):
            prefix = self.prefix if start > 0 else ""
            end = min(len(word), start + self._longest)
            while end > start and prefix + word[start:end] not in self.vocab:
                end -= 1
            if end == start:
                return [self.unk_token]
            pieces.append(prefix + word[start:end])
            start = end
        return pieces


class _WordIdsCache(dict):
    """word → its WordPiece ids, computed on first sight (``dict.__missing__``), at most
    ``capacity`` words kept."""

    def __init__(self, wordpiece: WordPiece, capacity: int):
        super().__init__()
        self.wordpiece = wordpiece
        self.capacity = capacity

    def __missing__(self, word: str) -> list[int]:
        vocab = self.wordpiece.vocab
        ids = [vocab[piece] for piece in self.wordpiece.tokenize(word)]
        if len(self) < self.capacity:
            self[word] = ids
        return ids


@dataclasses.dataclass(frozen=True)
class AddedToken:
    """A token found in the text before WordPiece runs, with ``tokenizers``' flags.

    Args:
        content: the token's text.
        id: its id: the vocabulary's when ``content`` is in it, else the next free id after
            the vocabulary and the tokens added before; ``None`` picks that id.
        special: a special token: in ``all_special_tokens``, dropped by
            ``decode(skip_special_tokens=True)``, never masked by MLM pre-training.
        normalized: matched in the normalized text (so ``"<ENT>"`` with lower-casing also
            matches ``"<Ent>"``), else in the raw text, exactly.
        lstrip, rstrip: the match takes in the whitespace on its left, or right.
        single_word: matched only where no word character (Rust regex's ``\\w``: letters,
            marks, decimal digits, connector punctuation) touches it on either side.

    Several tokens matching at one place: the leftmost, then the longest, wins.
    """

    content: str
    id: int | None = None
    special: bool = False
    normalized: bool = True
    lstrip: bool = False
    rstrip: bool = False
    single_word: bool = False


def _is_word_char(char: str) -> bool:
    """Rust regex's ``\\w`` (what tokenizers tests a single_word token's neighbours with):
    letters, marks, decimal and letter numbers, connector punctuation, the zero-width
    (non-)joiner."""
    return (char.isalpha() or char in "\u200c\u200d"
            or unicodedata.category(char) in ("Mn", "Mc", "Me", "Nd", "Nl", "Pc"))


class _AddedTokenFinder:
    """Cuts a text into pieces at the added tokens it contains, as ``tokenizers``'
    ``AddedVocabulary.find_matches`` does; ``patterns`` maps the text to look for to the
    token (for a normalized token, its normalized content)."""

    def __init__(self, patterns: dict[str, AddedToken]):
        self.patterns = patterns
        # alternatives longest first: at each position the regex takes the longest match
        self.regex = re.compile("|".join(re.escape(p) for p in sorted(patterns, key=len,
                                                                      reverse=True))) \
            if patterns else None

    def split(self, text: str) -> list[tuple[str, AddedToken | None]]:
        """``text`` as (piece, the token it is, or None for plain text), in order."""
        if self.regex is None or self.regex.search(text) is None:
            return [(text, None)]
        pieces: list[tuple[str, AddedToken | None]] = []
        end = 0  # where the last piece ended
        for match in self.regex.finditer(text):
            start, stop = match.span()
            token = self.patterns[match.group()]
            if token.single_word and ((start > 0 and _is_word_char(text[start - 1]))
                                      or (stop < len(text) and _is_word_char(text[stop]))):
                continue
            if token.lstrip:  # not into a piece already taken
                start = max(len(text[:start].rstrip(SPACES)), end)
            if token.rstrip:
                stop = len(text) - len(text[stop:].lstrip(SPACES))
            if start > end:
                pieces.append((text[end:start], None))
            pieces.append((text[start:stop], token))
            end = stop
        if end < len(text) or not pieces:
            pieces.append((text[end:], None))
        return pieces


def longest_first_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """How many tokens of a pair (A, B) to keep so that at most ``budget`` remain.

    "Longest first" means: cut the longer sequence until both are as long, then cut both in
    turn. ``tokenizers`` computes the result in closed form, and we do the same, because the
    closed form decides where an odd token goes: with s the shorter length (A's on a tie),

        s ≤ budget // 2:  the shorter keeps all s, the longer keeps budget - s;
        otherwise:        the shorter keeps budget // 2, the longer budget - budget // 2.

    So an odd leftover token goes to the sequence that was longer at the start, to B on a tie
    (``transformers``' one-at-a-time loop would give it to A): (5, 5) with budget 7 → (3, 4).
    """
    if len_a + len_b <= budget:
        return len_a, len_b
    shorter = min(len_a, len_b)
    if shorter <= budget // 2:
        keep_shorter, keep_longer = shorter, budget - shorter
    else:
        keep_shorter, keep_longer = budget // 2, budget - budget // 2
    return (keep_shorter, keep_longer) if len_a <= len_b else (keep_longer, keep_shorter)


class BatchEncoding(dict):
    """The result of a tokenizer call: a dict of ``input_ids``, ``token_type_ids`` and
    ``attention_mask`` whose entries can also be read as attributes (``enc.input_ids``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no field {name!r}; it has {list(self)}") \
                from None


_PADDING = {True: "longest", "longest": "longest", "max_length": "max_length",
            False: None, "do_not_pad": None}
_TRUNCATION = {True: True, "longest_first": True, False: False, "do_not_truncate": False}


def _option(table: dict, value: Any, name: str) -> Any:
    if isinstance(value, bool | str) and value in table:
        return table[value]
    raise ValueError(f"{name} must be one of {list(table)}, got {value!r}")


def read_vocab(vocab_file: str | Path) -> dict[str, int]:
    """``vocab.txt``: one token a line, its id the line number (from 0)."""
    path = Path(vocab_file)
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary file {path} does not exist")
    vocab: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for index, line in enumerate(f):
            token = line.rstrip("\n")
            if token in vocab:
                raise ValueError(f"{path}: token {token!r} appears twice (lines "
                                 f"{vocab[token] + 1} and {index + 1})")
            vocab[token] = index
    if not vocab:
        raise ValueError(f"{path}: the vocabulary file is empty")
    return vocab


def _ids_to_tokens(vocab: dict[str, int], source: str) -> list[str]:
    """The vocabulary's tokens in id order; its ids must be 0..n-1, each once."""
    tokens: list[str | None] = [None] * len(vocab)
    for token, index in vocab.items():
        if not (isinstance(index, int) and 0 <= index < len(vocab)) or tokens[index] is not None:
            raise ValueError(f"{source}: token {token!r} has id {index!r}; a vocabulary of "
                             f"{len(vocab)} tokens needs the ids 0..{len(vocab) - 1}, each once")
        tokens[index] = token
    if not tokens:
        raise ValueError(f"{source}: the vocabulary is empty")
    return tokens  # type: ignore[return-value]


class BertTokenizer:
    """BERT's tokenizer: text (or a pair of texts) → ``input_ids``, ``token_type_ids`` and
    ``attention_mask``, as Hugging Face's ``BertTokenizer`` names them.

    >>> tok = BertTokenizer.from_pretrained("path/to/all-MiniLM-L6-v2")   # doctest: +SKIP
    >>> tok("Hello world!")["input_ids"]                                     # doctest: +SKIP
    [101, 7592, 2088, 999, 102]
    >>> batch = tok(["a", "b c"], padding=True, return_tensors="np")       # doctest: +SKIP
    >>> batch["attention_mask"]                                              # doctest: +SKIP
    array([[1, 1, 1, 0], [1, 1, 1, 1]])

    Args:
        vocab: the WordPiece vocabulary: a ``vocab.txt`` (one token a line, its id the line
            number), or a dict {token: id} with the ids 0..n-1.
        do_lower_case, strip_accents, tokenize_chinese_chars, clean_text: see
            :class:`BasicTokenizer`.
        unk_token, sep_token, pad_token, cls_token, mask_token: the special tokens' strings;
            each must be in the vocabulary or among the added tokens. They are added tokens
            themselves (special, not normalized) unless ``added_tokens`` lists them.
        model_max_length: the length used when truncation or ``padding="max_length"`` is asked
            for without ``max_length`` (the model's number of positions).
        max_input_chars_per_word: longer words become ``unk_token``.
        continuing_subword_prefix: what marks a piece that continues a word (``"##"``).
        added_tokens: :class:`AddedToken` s (or dicts of their fields), found in the text
            before WordPiece; a new token's id follows the vocabulary and the tokens before it.
        source: where the vocabulary came from, for error messages (default: ``vocab``'s path).
        cache_size: how many words' WordPiece splits to remember.

    ``vocab_size`` and ``len(tokenizer)`` count every id, the added tokens' too: the rows a
    model's embeddings need. (Hugging Face's ``vocab_size`` leaves the added tokens out.)
    """

    def __init__(self, vocab: str | Path | Mapping[str, int], do_lower_case: bool = True,
                 strip_accents: bool | None = None, tokenize_chinese_chars: bool = True,
                 clean_text: bool = True, unk_token: str = "[UNK]", sep_token: str = "[SEP]",
                 pad_token: str = "[PAD]", cls_token: str = "[CLS]", mask_token: str = "[MASK]",
                 model_max_length: int = 512, max_input_chars_per_word: int = 100,
                 continuing_subword_prefix: str = "##",
                 added_tokens: Iterable[AddedToken | dict[str, Any]] = (),
                 source: str | Path | None = None, cache_size: int = 1_000_000):
        if isinstance(vocab, str | Path):
            self.source = str(source or vocab)
            self.vocab = read_vocab(vocab)
        else:
            self.source = str(source or "the vocabulary")
            self.vocab = dict(vocab)
        self.ids_to_tokens = _ids_to_tokens(self.vocab, self.source)
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        self.model_max_length = model_max_length
        self.init_kwargs = {
            "do_lower_case": do_lower_case, "strip_accents": strip_accents,
            "tokenize_chinese_chars": tokenize_chinese_chars, "clean_text": clean_text,
            "unk_token": unk_token, "sep_token": sep_token, "pad_token": pad_token,
            "cls_token": cls_token, "mask_token": mask_token,
            "model_max_length": model_max_length,
            "max_input_chars_per_word": max_input_chars_per_word,
        }
        self.basic = BasicTokenizer(do_lower_case, strip_accents, tokenize_chinese_chars,
                                    clean_text)
        self._add_tokens([t if isinstance(t, AddedToken) else AddedToken(**t)
                          for t in added_tokens])
        self.wordpiece = WordPiece(self.vocab, unk_token, max_input_chars_per_word,
                                   continuing_subword_prefix)
        self._word_ids = _WordIdsCache(self.wordpiece, cache_size)

    def _add_tokens(self, tokens: list[AddedToken]) -> None:
        """Give each added token its id, check the special tokens exist, and build the two
        finders: raw text for the tokens that are not normalized, normalized text for the
        others."""
        given = {token.content for token in tokens}
        tokens += [AddedToken(role, self.vocab[role], special=True, normalized=False)
                   for role in dict.fromkeys(self._roles) if role in self.vocab
                   and role not in given]
        self.added_tokens: list[AddedToken] = []
        token_ids = dict(self.vocab)  # every token's id: the vocabulary's and the added ones
        for token in sorted(tokens, key=lambda t: (t.id is None, t.id or 0)):  # new ones last
            expected = self.vocab.get(token.content, len(self.ids_to_tokens))
            if token.content in token_ids and token.content not in self.vocab:
                raise ValueError(f"{self.source}: added token {token.content!r} is given twice")
            if token.id is not None and token.id != expected:
                where = ("the vocabulary's" if token.content in self.vocab
                         else "the next free id")
                raise ValueError(f"{self.source}: added token {token.content!r} has id "
                                 f"{token.id}, not {expected} ({where})")
            token = dataclasses.replace(token, id=expected)
            self.added_tokens.append(token)
            token_ids[token.content] = expected
            if expected == len(self.ids_to_tokens):
                # tokenizers shows a normalized token as it matches: "<ENT>" as "<ent>"
                self.ids_to_tokens.append(self.basic.normalize(token.content)
                                          if token.normalized else token.content)
        self._token_ids = token_ids
        missing = [t for t in self._roles if t not in token_ids]
        if missing:
            raise ValueError(f"{self.source}: the special tokens {missing} are not in the "
                             "vocabulary")
        self.unk_token_id, self.sep_token_id = token_ids[self.unk_token], token_ids[self.sep_token]
        self.pad_token_id, self.cls_token_id = token_ids[self.pad_token], token_ids[self.cls_token]
        self.mask_token_id = token_ids[self.mask_token]
        raw: dict[str, AddedToken] = {}
        normalized: dict[str, AddedToken] = {}
        for token in self.added_tokens:  # in id order: the first of two equal patterns wins
            pattern = self.basic.normalize(token.content) if token.normalized else token.content
            if not pattern:
                raise ValueError(f"{self.source}: added token {token.content!r} is empty once "
                                 "normalized")
            (normalized if token.normalized else raw).setdefault(pattern, token)
        self._raw_finder = _AddedTokenFinder(raw)
        self._normalized_finder = _AddedTokenFinder(normalized)

    # --- loading and saving --------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, directory: str | Path, **overrides: Any) -> BertTokenizer:
        """The tokenizer of a directory in Hugging Face's layout: ``vocab.txt`` with
        ``tokenizer_config.json`` and the added-token files, or ``tokenizer.json`` (see
        :func:`minigrad.data.tokenizer_files.read_pretrained`); keyword arguments override the
        files' settings. Local files only: nothing is fetched."""
        return cls(**{**tokenizer_files.read_pretrained(directory), **overrides})

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``vocab.txt`` and ``tokenizer_config.json`` (the settings, and the added
        tokens as ``added_tokens_decoder`` and ``additional_special_tokens``, as
        ``transformers`` 4 writes them) that :meth:`from_pretrained` and ``transformers`` read
        back. A continuing-subword prefix other than ``"##"`` is refused: these files cannot
        say it."""
        if self.wordpiece.prefix != "##":
            raise ValueError(f"save_pretrained: continuing_subword_prefix "
                             f"{self.wordpiece.prefix!r} cannot be written to vocab.txt and "
                             "tokenizer_config.json (BertTokenizer's files assume '##')")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / tokenizer_files.VOCAB_FILE).write_text(
            "".join(t + "\n" for t in self.ids_to_tokens[:len(self.vocab)]), encoding="utf-8")
        roles = set(self._roles)
        config = {
            "tokenizer_class": "BertTokenizer", **self.init_kwargs,
            "added_tokens_decoder": {
                str(t.id): {"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized,
                            "rstrip": t.rstrip, "single_word": t.single_word,
                            "special": t.special}
                for t in self.added_tokens},
            "additional_special_tokens": [t.content for t in self.added_tokens
                                          if t.special and t.content not in roles],
        }
        (directory / tokenizer_files.CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n",
                                                             encoding="utf-8")

    # --- vocabulary ----------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """The number of ids: the vocabulary and the added tokens."""
        return len(self.ids_to_tokens)

    def __len__(self) -> int:
        return len(self.ids_to_tokens)

    def get_vocab(self) -> dict[str, int]:
        """{token: id} for the vocabulary and the added tokens (``tokenizers``' get_vocab)."""
        return dict(self._token_ids)

    @property
    def _roles(self) -> list[str]:
        return [self.cls_token, self.sep_token, self.pad_token, self.unk_token, self.mask_token]

    @property
    def all_special_tokens(self) -> list[str]:
        """The five special tokens' strings, then the other added tokens flagged special."""
        roles = self._roles
        return roles + [t.content for t in self.added_tokens
                        if t.special and t.content not in roles]

    @property
    def all_special_ids(self) -> list[int]:
        return [self._token_ids[token] for token in self.all_special_tokens]

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Token(s) → id(s); a token outside the vocabulary and the added tokens gets
        ``unk_token_id``."""
        if isinstance(tokens, str):
            return self._token_ids.get(tokens, self.unk_token_id)
        return [self._token_ids.get(token, self.unk_token_id) for token in tokens]

    def convert_ids_to_tokens(self, ids: int | Iterable[int]) -> str | list[str]:
        """Id(s) → token(s)."""
        if isinstance(ids, int | np.integer):
            return self._token(int(ids))
        return [self._token(int(i)) for i in ids]

    def _token(self, index: int) -> str:
        if not 0 <= index < len(self.ids_to_tokens):
            raise IndexError(f"token id {index} is outside the vocabulary "
                             f"(0..{len(self.ids_to_tokens) - 1})")
        return self.ids_to_tokens[index]

    # --- text → ids ----------------------------------------------------------------------------

    def _text_ids(self, text: str) -> list[int]:
        """The ids of one text, without special tokens added: the added tokens that are not
        normalized are found in the raw text, the normalized ones in each remaining piece once
        normalized, and what is left of it is split into words for WordPiece."""
        if not isinstance(text, str):
            raise TypeError(f"expected a str to tokenize, got {type(text).__name__}")
        word_ids = self._word_ids
        basic = self.basic
        ids: list[int] = []
        for piece, token in self._raw_finder.split(text):
            if token is not None:
                ids.append(token.id)
                continue
            for part, token in self._normalized_finder.split(basic.normalize(piece)):
                if token is not None:
                    ids.append(token.id)
                    continue
                for word in basic.split(part):
                    ids += word_ids[word]
        return ids

    def tokenize(self, text: str) -> list[str]:
        """The WordPiece tokens of a text, without special tokens: ``"unaffable"`` →
        ``["una", "##ffa", "##ble"]``."""
        return [self.ids_to_tokens[i] for i in self._text_ids(text)]

    def build_inputs(self, ids_a: list[int], ids_b: list[int] | None = None,
                     add_special_tokens: bool = True) -> tuple[list[int], list[int]]:
        """``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``, and the token types: 0 for
        ``[CLS] A [SEP]``, 1 for ``B [SEP]``."""
        if add_special_tokens:
            ids_a = [self.cls_token_id, *ids_a, self.sep_token_id]
            if ids_b is not None:
                ids_b = [*ids_b, self.sep_token_id]
        if ids_b is None:
            return ids_a, [0] * len(ids_a)
        return ids_a + ids_b, [0] * len(ids_a) + [1] * len(ids_b)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """2 for ``[CLS] A [SEP]``, 3 for ``[CLS] A [SEP] B [SEP]``."""
        return 3 if pair else 2

    def _encode_one(self, text: str, text_pair: str | None, add_special_tokens: bool,
                    max_length: int | None) -> tuple[list[int], list[int]]:
        """One example's ids and token types, truncated to ``max_length`` when it is given."""
        ids_a = self._text_ids(text)
        ids_b = None if text_pair is None else self._text_ids(text_pair)
        if max_length is not None:
            budget = max_length - (self.num_special_tokens_to_add(ids_b is not None)
                                   if add_special_tokens else 0)
            if ids_b is None:
                ids_a = ids_a[:budget]
            else:
                keep_a, keep_b = longest_first_lengths(len(ids_a), len(ids_b), budget)
                ids_a, ids_b = ids_a[:keep_a], ids_b[:keep_b]
        return self.build_inputs(ids_a, ids_b, add_special_tokens)

    def __call__(self, text: str | Sequence[str], text_pair: str | Sequence[str] | None = None,
                 add_special_tokens: bool = True, padding: bool | str = False,
                 truncation: bool | str = False, max_length: int | None = None,
                 return_tensors: str | None = None) -> BatchEncoding:
        """Encode one text or a batch of texts (optionally paired), Hugging Face style.

        Args:
            text: a str, or a list of str (a batch).
            text_pair: the second sequence of each pair, of the same kind as ``text``.
            padding: ``True``/``"longest"`` pads to the longest sequence of the batch,
                ``"max_length"`` to ``max_length``; ``False`` does not pad.
            truncation: ``True``/``"longest_first"`` cuts each example to ``max_length``
                tokens, special tokens included (a pair as :func:`longest_first_lengths`).
            max_length: the length for truncation and ``padding="max_length"``; when one of
                them is asked for without it, ``model_max_length``.
            return_tensors: ``None`` for lists of ints, ``"np"`` for int64 arrays of shape
                (B, S) (padding needed for a batch of different lengths).

        Returns:
            a :class:`BatchEncoding` with ``input_ids``, ``token_type_ids`` and
            ``attention_mask`` (1 on tokens, 0 on padding). For a single str each is a flat
            list, or an array of shape (1, S) with ``return_tensors="np"``.
        """
        pad_to = _option(_PADDING, padding, "padding")
        truncate = _option(_TRUNCATION, truncation, "truncation")
        if return_tensors not in (None, "np"):
            raise ValueError(f"return_tensors must be None or 'np', got {return_tensors!r}")
        texts, pairs, batched = self._as_batch(text, text_pair)
        max_length = self._check_max_length(max_length, truncate, pad_to, pairs is not None,
                                            add_special_tokens)

        encoded = [self._encode_one(a, None if pairs is None else pairs[i], add_special_tokens,
                                    max_length if truncate else None)
                   for i, a in enumerate(texts)]
        lengths = [len(ids) for ids, _ in encoded]
        if pad_to == "max_length" and lengths and max(lengths) > max_length:
            i = lengths.index(max(lengths))
            raise ValueError(f"example {i} has {lengths[i]} tokens, more than "
                             f"max_length={max_length}, and truncation is off; pass "
                             "truncation=True to cut it")
        width = {"max_length": max_length, "longest": max(lengths, default=0), None: None}[pad_to]
        if return_tensors == "np":
            return self._pad_to_arrays(encoded, lengths, width)
        result = BatchEncoding(input_ids=[], token_type_ids=[], attention_mask=[])
        for (ids, types), n in zip(encoded, lengths, strict=True):
            n_pad = 0 if width is None else width - n
            result["input_ids"].append(ids + [self.pad_token_id] * n_pad)
            result["token_type_ids"].append(types + [0] * n_pad)
            result["attention_mask"].append([1] * n + [0] * n_pad)
        if not batched:
            for key, rows in result.items():
                result[key] = rows[0]
        return result

    def _pad_to_arrays(self, encoded: list[tuple[list[int], list[int]]], lengths: list[int],
                       width: int | None) -> BatchEncoding:
        """The encoded examples as int64 arrays of shape (B, width), padded on the right."""
        if width is None:
            if len(set(lengths)) > 1:
                raise ValueError("return_tensors='np' needs sequences of one length, got "
                                 f"lengths {sorted(set(lengths))}; pass padding=True")
            width = lengths[0] if lengths else 0
        input_ids = np.full((len(encoded), width), self.pad_token_id, dtype=np.int64)  # (B, S)
        token_type_ids = np.zeros((len(encoded), width), dtype=np.int64)              # (B, S)
        for row, (ids, types) in enumerate(encoded):
            input_ids[row, :len(ids)] = ids
            token_type_ids[row, :len(types)] = types
        positions = np.arange(width)                                                    # (S,)
        attention_mask = (positions < np.array(lengths, dtype=np.int64).reshape(-1, 1))  # (B, S)
        return BatchEncoding(input_ids=input_ids, token_type_ids=token_type_ids,
                             attention_mask=attention_mask.astype(np.int64))

    def _as_batch(self, text: Any, text_pair: Any) -> tuple[list[str], list[str] | None, bool]:
        """(texts, pairs or None, whether the input was a batch), with the types checked."""
        batched = not isinstance(text, str)
        texts = list(text) if batched else [text]
        pairs = None
        if text_pair is not None:
            if batched == isinstance(text_pair, str):
                raise TypeError("text and text_pair must both be a str or both be lists of str, "
                                f"got {type(text).__name__} and {type(text_pair).__name__}")
            pairs = list(text_pair) if batched else [text_pair]
            if len(pairs) != len(texts):
                raise ValueError(f"text has {len(texts)} examples but text_pair has {len(pairs)}")
        for name, items in (("text", texts), ("text_pair", pairs or [])):
            for i, item in enumerate(items):
                if not isinstance(item, str):
                    raise TypeError(f"{name}[{i}] is a {type(item).__name__}, not a str")
        return texts, pairs, batched

    def _check_max_length(self, max_length: int | None, truncate: bool, pad_to: str | None,
                          pair: bool, add_special_tokens: bool) -> int | None:
        """``max_length`` checked against what the call uses it for."""
        uses_max_length = truncate or pad_to == "max_length"
        if max_length is None:
            return self.model_max_length if uses_max_length else None
        if not uses_max_length:
            raise ValueError(f"max_length={max_length} is given but neither truncation nor "
                             "padding='max_length' is on; pass truncation=True to cut to it")
        if not isinstance(max_length, int) or isinstance(max_length, bool):
            raise TypeError(f"max_length must be an int, got {type(max_length).__name__}")
        if not add_special_tokens:
            if max_length < 1:
                raise ValueError(f"max_length must be at least 1, got {max_length}")
            return max_length
        n_special = self.num_special_tokens_to_add(pair)
        if max_length < n_special:
            layout = "[CLS] A [SEP] B [SEP]" if pair else "[CLS] A [SEP]"
            raise ValueError(f"max_length={max_length} is too small to hold the {n_special} "
                             f"special tokens of {layout}: it must be at least {n_special}")
        return max_length

    def encode(self, text: str, text_pair: str | None = None, add_special_tokens: bool = True,
               max_length: int | None = None, truncation: bool | str = False,
               padding: bool | str = False) -> list[int]:
        """The ``input_ids`` of one text or pair, as a list: ``"Hello!"`` →
        ``[101, 7592, 999, 102]``."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes one str (use tokenizer(list) for a batch), "
                            f"got {type(text).__name__}")
        return self(text, text_pair, add_special_tokens=add_special_tokens, padding=padding,
                    truncation=truncation, max_length=max_length)["input_ids"]

    # --- ids → text ----------------------------------------------------------------------------

    # tokenizers' WordPiece decoder tidies each token (with its leading space) by these rules
    CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
               (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"),
               (" 're", "'re"))

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool = True) -> str:
        """Ids → text: tokens joined by spaces, ``##`` pieces glued to the word before them
        and, when cleaning up, no space before ``. ? ! ,``. Lower-casing and stripped accents
        cannot be undone."""
        ids = [int(ids)] if isinstance(ids, int | np.integer) else [int(i) for i in ids]
        if skip_special_tokens:
            special = set(self.all_special_ids)
            ids = [i for i in ids if i not in special]
        tokens = [self._token(i) for i in ids]
        prefix = self.wordpiece.prefix
        parts = []
        for i, token in enumerate(tokens):
            if i > 0:
                token = token[len(prefix):] if token.startswith(prefix) else " " + token
            if clean_up_tokenization_spaces:
                for before, after in self.CLEANUP:
                    token = token.replace(before, after)
            parts.append(token)
        return "".join(parts)

    def __repr__(self) -> str:
        return (f"BertTokenizer(vocab_size={self.vocab_size}, "
                f"do_lower_case={self.basic.do_lower_case}, "
                f"strip_accents={self.basic.strip_accents}, "
                f"model_max_length={self.model_max_length})")
