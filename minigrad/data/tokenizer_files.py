"""A BERT tokenizer's files, in Hugging Face's two layouts, read into :class:`BertTokenizer`'s
keyword arguments (see :func:`read_pretrained`).

The vocab.txt layout (BERT's original one; ``transformers`` 4 and minigrad write it)::

    vocab.txt                 the WordPiece vocabulary, one token a line
    tokenizer_config.json     the settings (do_lower_case, ..., model_max_length), the special
                              tokens' roles and, since transformers 4.34, "added_tokens_decoder":
                              every added token with its id and flags
    added_tokens.json         {token: id}: the older record of the added tokens
    special_tokens_map.json   the special tokens' roles and "additional_special_tokens"

The tokenizer.json layout (Hugging Face's ``tokenizers``; ``transformers`` 5 writes only it)::

    tokenizer.json            the vocabulary, the normalizer, the pre-tokenizer, the
                              post-processor and the added tokens, in one file
    tokenizer_config.json     what tokenizer.json does not hold: model_max_length, the roles

The vocab.txt layout is read when ``vocab.txt`` exists, the tokenizer.json layout otherwise.
Two files that both give a setting must agree; a setting that minigrad's tokenizer cannot
reproduce is refused (ValueError naming the file and the value) rather than ignored:

- tokenizer.json: a model other than WordPiece, a normalizer other than BertNormalizer (or
  none), a pre-tokenizer other than BertPreTokenizer, a decoder other than WordPiece, a
  post-processor that does not build ``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]``;
- tokenizer_config.json: ``do_basic_tokenize=false``, a ``never_split`` list,
  ``split_special_tokens=true``;
- an added token whose id is not the vocabulary's (for a token in it) or the next free one.

tokenizer.json's ``truncation`` and ``padding`` are not settings of the tokenizer but defaults
of the ``tokenizers`` library's encode, and ``transformers`` does not apply them: they are
ignored here too. Where transformers 4 and 5 read a file differently (a special token listed
only in added_tokens.json), minigrad follows transformers 4, which wrote that file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
ADDED_TOKENS_FILE = "added_tokens.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"

ROLES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# The settings BertTokenizer takes from tokenizer_config.json (keys with Hugging Face's names).
SETTINGS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "clean_text", *ROLES,
            "model_max_length", "max_input_chars_per_word")
# An added token's flags, with tokenizers' meaning (see minigrad.data.tokenizer.AddedToken).
FLAGS = ("special", "normalized", "lstrip", "rstrip", "single_word")


def read_json(path: Path, kind: type = dict) -> Any:
    """A JSON file that must hold a ``kind`` (dict or list); ValueError naming it otherwise."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(value, kind):
        raise ValueError(f"{path} holds a {type(value).__name__}, not a JSON {kind.__name__}")
    return value


def _content(token: Any) -> Any:
    """A special token as tokenizer_config.json may give it: a str, or a serialised
    ``AddedToken`` (``{"content": "[UNK]", ...}``)."""
    return token["content"] if isinstance(token, dict) and "content" in token else token


def merge(settings: dict[str, Any], new: dict[str, Any], new_source: Path,
          old_source: Path) -> dict[str, Any]:
    """``settings`` updated with ``new``, refusing a key the two give different values."""
    for key, value in new.items():
        if key in settings and settings[key] != value:
            raise ValueError(f"{new_source}: {key}={value!r} disagrees with {old_source}'s "
                             f"{key}={settings[key]!r}")
    return {**settings, **new}


def _check_config(config: dict[str, Any], path: Path) -> None:
    """Refuse the tokenizer_config.json options that minigrad's tokenizer does not have."""
    if config.get("do_basic_tokenize", True) is False:
        raise ValueError(f"{path}: do_basic_tokenize=false is not supported")
    if config.get("never_split"):
        raise ValueError(f"{path}: never_split={config['never_split']!r} is not supported")
    if config.get("split_special_tokens"):
        raise ValueError(f"{path}: split_special_tokens=true is not supported")


def _additional_special_tokens(*configs: dict[str, Any]) -> list[str]:
    """The special tokens beyond the five roles: "additional_special_tokens" (transformers 4)
    and "extra_special_tokens" (transformers 5: a list; 4.4x: a dict of named tokens)."""
    tokens: list[str] = []
    for config in configs:
        for key in ("additional_special_tokens", "extra_special_tokens"):
            value = config.get(key) or []
            for token in value.values() if isinstance(value, dict) else value:
                if _content(token) not in tokens:
                    tokens.append(_content(token))
    return tokens


def _added_token(entry: Any, path: Path, token_id: Any = None) -> dict[str, Any]:
    """One added token as BertTokenizer takes it (its content, id and flags), from a
    tokenizer.json "added_tokens" entry (its id inside) or a tokenizer_config.json
    "added_tokens_decoder" one (its id the key). A missing ``normalized`` flag is
    ``not special``, as in Hugging Face's ``AddedToken``."""
    if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
        raise ValueError(f"{path}: added token {entry!r} has no content string")
    if token_id is None:
        token_id = entry.get("id")
    try:
        token_id = int(token_id)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: added token {entry['content']!r} has id {token_id!r}, not "
                         "an integer") from None
    special = bool(entry.get("special", False))
    return {"content": entry["content"], "id": token_id, "special": special,
            "normalized": bool(entry.get("normalized", not special)),
            **{flag: bool(entry.get(flag, False)) for flag in ("lstrip", "rstrip", "single_word")}}


def read_tokenizer_json(path: Path) -> dict[str, Any]:
    """BertTokenizer's keyword arguments from a ``tokenizer.json`` of a BERT tokenizer.

    Read: the WordPiece model (``vocab``, ``unk_token``, ``continuing_subword_prefix``,
    ``max_input_chars_per_word``); the normalizer (``BertNormalizer``'s ``lowercase``,
    ``strip_accents``, ``handle_chinese_chars``, ``clean_text``, or none at all); the
    ``[CLS]`` and ``[SEP]`` tokens from the post-processor; the padding's ``pad_token``; the
    ``added_tokens``. Refused: another model, normalizer or pre-tokenizer than BERT's (or
    none), a decoder other than WordPiece, a post-processor that does not build
    ``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]`` with token types 0 and 1.
    """
    data = read_json(path)
    model = data.get("model") or {}
    if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise ValueError(f"{path}: model type {model.get('type')!r} is not WordPiece with a "
                         "vocab: minigrad's BertTokenizer reads WordPiece tokenizers only")
    settings: dict[str, Any] = {
        "vocab": model["vocab"],
        "unk_token": model.get("unk_token", "[UNK]"),
        "continuing_subword_prefix": model.get("continuing_subword_prefix", "##"),
        "max_input_chars_per_word": model.get("max_input_chars_per_word", 100),
    }
    normalizer = data.get("normalizer")
    if normalizer is None:
        settings.update(do_lower_case=False, strip_accents=False, tokenize_chinese_chars=False,
                        clean_text=False)
    elif normalizer.get("type") == "BertNormalizer":
        settings.update(do_lower_case=normalizer.get("lowercase", True),
                        strip_accents=normalizer.get("strip_accents"),
                        tokenize_chinese_chars=normalizer.get("handle_chinese_chars", True),
                        clean_text=normalizer.get("clean_text", True))
    else:
        raise ValueError(f"{path}: normalizer {normalizer.get('type')!r} is not supported "
                         "(BertNormalizer or none)")
    pre_tokenizer = (data.get("pre_tokenizer") or {}).get("type")
    if pre_tokenizer != "BertPreTokenizer":
        raise ValueError(f"{path}: pre_tokenizer {pre_tokenizer!r} is not supported "
                         "(BertPreTokenizer only)")
    decoder = data.get("decoder") or {"type": "WordPiece"}
    if decoder.get("type") != "WordPiece" or decoder.get(
            "prefix", settings["continuing_subword_prefix"]) != settings[
            "continuing_subword_prefix"]:
        raise ValueError(f"{path}: decoder {decoder!r} is not supported (WordPiece, with the "
                         "model's continuing_subword_prefix)")
    settings["cls_token"], settings["sep_token"] = _cls_and_sep(data.get("post_processor"), path)
    if (data.get("padding") or {}).get("pad_token") is not None:
        settings["pad_token"] = data["padding"]["pad_token"]
    settings["added_tokens"] = [_added_token(entry, path) for entry in
                                data.get("added_tokens") or []]
    return settings


def _cls_and_sep(processor: Any, path: Path) -> tuple[str, str]:
    """The ``[CLS]`` and ``[SEP]`` tokens of a post-processor that builds BERT's inputs:
    ``BertProcessing``, or a ``TemplateProcessing`` whose templates are ``[CLS] $A [SEP]`` and
    ``[CLS] $A [SEP] $B:1 [SEP]:1``."""
    kind = (processor or {}).get("type")
    if kind == "BertProcessing":
        return processor["cls"][0], processor["sep"][0]
    if kind == "TemplateProcessing":
        single, pair = processor.get("single") or [], processor.get("pair") or []
        if len(single) == 3 and "SpecialToken" in single[0] and "SpecialToken" in single[2]:
            cls, sep = single[0]["SpecialToken"]["id"], single[2]["SpecialToken"]["id"]
            expected_single = [{"SpecialToken": {"id": cls, "type_id": 0}},
                               {"Sequence": {"id": "A", "type_id": 0}},
                               {"SpecialToken": {"id": sep, "type_id": 0}}]
            expected_pair = [*expected_single, {"Sequence": {"id": "B", "type_id": 1}},
                             {"SpecialToken": {"id": sep, "type_id": 1}}]
            if single == expected_single and pair == expected_pair:
                return cls, sep
    raise ValueError(f"{path}: post_processor {kind!r} does not build BERT's [CLS] A [SEP] "
                     "(B [SEP]) inputs, the only ones minigrad's BertTokenizer builds")


def _legacy_added_tokens(directory: Path, config: dict[str, Any],
                         special: set[str]) -> list[dict[str, Any]]:
    """The added tokens of the vocab.txt layout: tokenizer_config.json's
    "added_tokens_decoder" (with their flags), then those of added_tokens.json that it does not
    list. An added_tokens.json token is special when a special-token list or role names it,
    and then not normalized, the others normalized (transformers 4's reading; transformers 5
    reads them all as normalized and not special)."""
    config_path = directory / CONFIG_FILE
    decoder = config.get("added_tokens_decoder") or {}
    tokens = [_added_token(entry, config_path, token_id) for token_id, entry in decoder.items()]
    added_file = directory / ADDED_TOKENS_FILE
    if added_file.is_file():
        listed = {token["id"] for token in tokens}
        for content, token_id in read_json(added_file).items():
            entry = {"content": content, "special": content in special}
            if token_id not in listed:
                tokens.append(_added_token(entry, added_file, token_id))
    return tokens


def read_pretrained(directory: str | Path) -> dict[str, Any]:
    """BertTokenizer's keyword arguments from a directory in either layout (the module's
    docstring): ``vocab`` (the vocab.txt path, or tokenizer.json's dict), the settings, the
    ``added_tokens`` (dicts of content, id or None, and flags) and ``source``, the file the
    vocabulary comes from. Local files only: nothing is fetched.

    A special token that a list names ("additional_special_tokens", "extra_special_tokens")
    but no file adds is added at the end of the vocabulary, special and not normalized, as
    ``transformers`` does.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"from_pretrained: {directory} is not a directory")
    config_path = directory / CONFIG_FILE
    config = read_json(config_path) if config_path.is_file() else {}
    _check_config(config, config_path)
    settings = {key: _content(config[key]) for key in SETTINGS if key in config}
    map_path = directory / SPECIAL_TOKENS_MAP_FILE
    special_map = read_json(map_path) if map_path.is_file() else {}
    settings = merge(settings, {role: _content(special_map[role]) for role in ROLES
                                if special_map.get(role) is not None}, map_path, config_path)
    extra = _additional_special_tokens(config, special_map)
    special = {*extra, *(settings.get(role) for role in ROLES)}

    if (directory / VOCAB_FILE).is_file():
        source = directory / VOCAB_FILE
        settings["vocab"] = source
        added = _legacy_added_tokens(directory, config, special)
    else:
        source = directory / TOKENIZER_FILE
        if not source.is_file():
            raise FileNotFoundError(f"{directory} holds neither {VOCAB_FILE} nor "
                                    f"{TOKENIZER_FILE}: no tokenizer to read")
        from_json = read_tokenizer_json(source)
        added = from_json.pop("added_tokens")
        settings = merge(settings, from_json, source, config_path)
    for token in added:
        token["special"] = token["special"] or token["content"] in extra
    known = {token["content"] for token in added}
    added += [{"content": token, "id": None, "special": True, "normalized": False}
              for token in extra if token not in known]
    return {**settings, "added_tokens": added, "source": source}
