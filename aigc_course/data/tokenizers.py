"""Tokenizers for lesson 05: GPT-2's byte-level BPE, written out, a plain byte tokenizer and a character one.

GPT-2 (Radford et al. 2019) reads text as **bytes**, not characters, so no
input is ever "unknown": any string, in any script, is a sequence of UTF-8
bytes 0..255. Byte-pair encoding (字节对编码, BPE; Sennrich et al. 2016) then
merges frequent neighbouring pieces into single tokens, 50,000 merges learned
once on WebText, giving a vocabulary of 256 + 50,000 + 1 (``<|endoftext|>``)
= 50,257 tokens. Encoding one string takes three steps:

1. **pre-tokenise** with a regular expression that splits text into words,
   numbers, punctuation runs and whitespace (``" world"`` keeps its leading
   space), so merges never cross a word boundary;
2. map each word's UTF-8 bytes to printable stand-in characters
   (:func:`bytes_to_unicode`: byte 32, a space, is shown as ``Ġ``), because
   the merge table is stored as text;
3. apply the learned merges to each word, always the **earliest-learned**
   (lowest-rank) pair first, until no pair in the word is in the table; look
   the pieces up in the vocabulary.

The vocabulary and merge table are OpenAI's original files, shipped with the
course as ``data/tokenizers/gpt2/encoder.json`` and ``vocab.bpe`` (byte-identical
to Hugging Face's ``vocab.json`` and ``merges.txt``; ``data/README.md`` says where
they come from) and checked against their sha256 through the asset registry.

The pre-tokenisation pattern needs Unicode classes (``\\p{L}`` letters,
``\\p{N}`` numbers), which Python's ``re`` lacks (``\\w`` also matches digits
and ``_``, ``\\d`` only decimal digits, so e.g. ``"½"`` or ``"²"`` would split
differently); we use the ``regex`` package, like OpenAI's reference encoder.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import regex

from aigc_course.core.assets import asset_path

#: GPT-2's pre-tokenisation pattern (OpenAI's encoder.py): contractions, letters, numbers, other symbols,
#: then whitespace; "\s+(?!\S)" leaves the last space of a run to start the next word.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
END_OF_TEXT = "<|endoftext|>"
GPT2_VOCAB, GPT2_MERGES = "tokenizers/gpt2/encoder.json", "tokenizers/gpt2/vocab.bpe"  # in data/assets.json


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """The reversible map byte -> printable character that GPT-2's files are written in.

    The 188 bytes that are already visible, non-space Latin-1 characters map to
    themselves ("!" .. "~", "¡" .. "¬", "®" .. "ÿ"); the other 68 (control
    characters, space, ...) map to 256, 257, ... in order, so byte 32 (space)
    becomes chr(288) = "Ġ" and byte 10 (newline) becomes "Ċ".
    """
    visible = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for b in range(256):
        if b in visible:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def gpt2_files() -> tuple[Path, Path]:
    """Paths of the official GPT-2 ``encoder.json`` (vocabulary) and ``vocab.bpe`` (merges).

    Both are shipped assets, checked against their registered size and sha256;
    a missing or damaged file raises ``FileNotFoundError`` / ``AssetError``
    saying how to restore it. Nothing is downloaded.
    """
    return asset_path(GPT2_VOCAB), asset_path(GPT2_MERGES)


class GPT2Tokenizer:
    """GPT-2's byte-level BPE from its vocabulary and merge files.

    >>> tok = GPT2Tokenizer()                        # doctest: +SKIP
    >>> tok.encode("Hello world")                    # doctest: +SKIP
    [15496, 995]
    """

    def __init__(self, vocab_file: str | Path | None = None, merges_file: str | Path | None = None):
        if vocab_file is None or merges_file is None:
            vocab_file, merges_file = gpt2_files()
        self.encoder: dict[str, int] = json.loads(Path(vocab_file).read_text(encoding="utf-8"))
        self.decoder = {i: s for s, i in self.encoder.items()}
        lines = Path(merges_file).read_text(encoding="utf-8").split("\n")
        pairs = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
        self.ranks: dict[tuple[str, str], int] = {pair: rank for rank, pair in enumerate(pairs)}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        self.pattern = regex.compile(GPT2_PATTERN)
        self.eot_id = self.encoder[END_OF_TEXT]
        self._cache: dict[str, tuple[str, ...]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def pretokenize(self, text: str) -> list[str]:
        """Step 1: split text into the chunks BPE works on (``"Hi there"`` -> ``["Hi", " there"]``)."""
        return self.pattern.findall(text)

    def bpe(self, word: str) -> tuple[str, ...]:
        """Step 3: merge the byte-characters of one pre-token, lowest-rank pair first; cached."""
        if word in self._cache:
            return self._cache[word]
        parts = tuple(word)
        while len(parts) > 1:
            pairs = set(zip(parts, parts[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = tuple(merged)
        if len(self._cache) < 100_000:
            self._cache[word] = parts
        return parts

    def tokenize(self, text: str) -> list[str]:
        """The token strings (in GPT-2's byte-character alphabet) that ``encode`` looks up."""
        pieces = []
        for chunk in self.pretokenize(text):
            pieces.extend(self.bpe("".join(self.byte_encoder[b] for b in chunk.encode("utf-8"))))
        return pieces

    def encode(self, text: str) -> list[int]:
        """Text -> token ids. The literal ``<|endoftext|>`` becomes the one special token 50256 (as in
        Hugging Face's tokenizers); everything else goes through pre-tokenisation and BPE."""
        ids: list[int] = []
        for i, part in enumerate(text.split(END_OF_TEXT)):
            if i:
                ids.append(self.eot_id)
            ids.extend(self.encoder[piece] for piece in self.tokenize(part))
        return ids

    def decode(self, ids, errors: str = "replace") -> str:
        """Token ids -> text. Bytes that do not form valid UTF-8 (a cut-off Chinese character) become "�"."""
        text = "".join(self.decoder[int(i)] for i in ids)
        return bytearray(self.byte_decoder[c] for c in text).decode("utf-8", errors=errors)

    def token_bytes(self, token_id: int) -> bytes:
        """The raw bytes one token stands for."""
        return bytes(self.byte_decoder[c] for c in self.decoder[int(token_id)])


class ByteTokenizer:
    """The simplest tokenizer that can read any text: one token per UTF-8 byte (vocabulary 256).

    An English letter is one byte, so on ASCII text this *is* a character-level
    model; a Chinese character is three bytes. This is the alphabet GPT-2's BPE
    starts from, before any merge. Our small trained models use it, so one
    model can read Shakespeare and Tang poems without an "unknown" token.
    """

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids, errors: str = "replace") -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors=errors)


class SubsetTokenizer:
    """GPT-2's BPE with a smaller vocabulary: the 256 byte tokens plus the GPT-2 tokens a corpus uses.

    A 50,257-row embedding is most of a small model's weights, and a 1 MB corpus
    uses only a few thousand of those tokens. So we keep GPT-2's tokenisation
    but renumber: our id ``i`` stands for GPT-2 token ``gpt2_ids[i]``. A GPT-2
    token outside the subset is spelled with its byte tokens instead (still
    lossless, just longer), which is why all 256 byte tokens are always kept:
    any text, in any script, still encodes and decodes exactly.

    >>> tok = SubsetTokenizer.from_text(shakespeare, min_count=3)   # doctest: +SKIP
    """

    def __init__(self, gpt2_ids, base: GPT2Tokenizer | None = None):
        self.base = base or gpt2_tokenizer()
        self.gpt2_ids = [int(i) for i in gpt2_ids]
        self.index = {g: i for i, g in enumerate(self.gpt2_ids)}
        self.byte_ids = [self.index.get(self.base.encoder[self.base.byte_encoder[b]]) for b in range(256)]
        if None in self.byte_ids:
            raise ValueError("a SubsetTokenizer vocabulary must contain GPT-2's 256 byte tokens")

    @classmethod
    def from_text(cls, text: str, min_count: int = 1, base: GPT2Tokenizer | None = None) -> "SubsetTokenizer":
        """The byte tokens plus every GPT-2 token that occurs at least ``min_count`` times in ``text``."""
        base = base or gpt2_tokenizer()
        counts: dict[int, int] = {}
        for i in base.encode(text):
            counts[i] = counts.get(i, 0) + 1
        byte_tokens = {base.encoder[base.byte_encoder[b]] for b in range(256)}
        return cls(sorted(byte_tokens | {i for i, c in counts.items() if c >= min_count}), base)

    @property
    def vocab_size(self) -> int:
        return len(self.gpt2_ids)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for g in self.base.encode(text):
            i = self.index.get(g)
            if i is None:  # not in the subset: spell it with byte tokens
                ids.extend(self.byte_ids[b] for b in self.base.token_bytes(g))
            else:
                ids.append(i)
        return ids

    def decode(self, ids, errors: str = "replace") -> str:
        return self.base.decode([self.gpt2_ids[int(i)] for i in ids], errors=errors)

    def token_bytes(self, token_id: int) -> bytes:
        return self.base.token_bytes(self.gpt2_ids[int(token_id)])


class CharTokenizer:
    """One token per character, from a fixed alphabet; characters outside it become ``UNKNOWN`` (id 0).

    For a text in one script with a small alphabet, such as Tang poems (2,000
    characters), this is the classic character-level model: a 5-character line
    is 5 tokens, where the byte tokenizer needs 15 (3 bytes per Chinese
    character) and a model has to learn to assemble characters from bytes.
    The price is a closed vocabulary: a character the alphabet lacks cannot be
    written, only read as "unknown". The alphabet is stored in the model card,
    so a checkpoint carries its tokenizer.

    >>> tok = CharTokenizer.from_text("床前明月光，疑是地上霜。\n")
    >>> tok.decode(tok.encode("明月光"))
    '明月光'
    """

    UNKNOWN = "\ufffd"  # "�", as bytes that are not valid UTF-8 decode

    def __init__(self, chars: str):
        if self.UNKNOWN in chars or len(set(chars)) != len(chars):
            raise ValueError("a CharTokenizer alphabet lists each character once and never the unknown mark \ufffd")
        self.chars = self.UNKNOWN + chars
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        """The alphabet of ``text``: its distinct characters, in code-point order (so it is reproducible)."""
        return cls("".join(sorted(set(text) - {cls.UNKNOWN})))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(ch, 0) for ch in text]

    def decode(self, ids, errors: str = "replace") -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def token_bytes(self, token_id: int) -> bytes:
        return self.chars[int(token_id)].encode("utf-8")


def tokenizer_for(card: dict):
    """The tokenizer a trained GPT's card names: bytes (vocabulary 256), characters, GPT-2's BPE, or a subset."""
    spec = card.get("tokenizer", "bytes")
    if isinstance(spec, dict) and spec.get("kind") == "gpt2-subset":
        return SubsetTokenizer(spec["gpt2_ids"])
    if isinstance(spec, dict) and spec.get("kind") == "chars":
        return CharTokenizer(spec["chars"])
    if card.get("config", {}).get("vocab_size") == 50257 or spec == "gpt2":
        return gpt2_tokenizer()
    return ByteTokenizer()


@lru_cache(maxsize=1)
def gpt2_tokenizer() -> GPT2Tokenizer:
    """One shared :class:`GPT2Tokenizer` (reading the files takes ~0.2 s)."""
    return GPT2Tokenizer()
