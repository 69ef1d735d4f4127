"""Word-level text data sets (Penn Treebank) as token-id sequences for language models.

Formats read:

* ``ptb-embedded``: PTB's validation and test splits (Mikolov's preprocessing) shipped
  inside this package (:func:`embedded_ptb_files`), gzip-compressed: PTB's training split
  is not among them, so a default study trains on (a slice of) the validation split;
* ``ptb``: a folder with the three standard files ``ptb.train.txt``, ``ptb.valid.txt`` and
  ``ptb.test.txt`` (plain or ``.gz``).

:func:`prepare_text` turns the splits into what a training run reads: a vocabulary of the
training tokens' most frequent words (the rest become ``<unk>``) and, per split, token ids
cut into non-overlapping sequences of ``seq_len`` tokens: inputs ``x`` (``N×T`` int64)
and next-token targets ``y`` (``x`` shifted by one token). Every sequence is a sample
of its own (a language model starts it from a zero state), so the shared minibatch
order (:class:`~lossland.data.DeviceBatches`) shuffles sequences.
"""

from __future__ import annotations

import collections
import gzip
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import torch

from .prepared import PreparedDataset, Split
from .sources import DataError

TEXT_SOURCES = ("ptb-embedded", "ptb")
PTB_SPLITS = ("train", "valid", "test")
EMBEDDED_PTB_SPLITS = ("valid", "test")
#: :func:`prepare_text`'s options, the keys a text data set's config entry may set beside ``source`` and ``path``
TEXT_OPTIONS = ("train_split", "test_split", "val_split", "train_tokens", "test_tokens", "val_tokens", "vocab_size",
                "seq_len")
EOS = "<eos>"
UNK = "<unk>"
#: which of our splits reads which source split by default
DEFAULT_SPLITS = {"ptb": {"train": "train", "test": "test"}, "ptb-embedded": {"train": "valid", "test": "test"}}


@dataclass
class RawText:
    """Tokens per source split (``train``, ``valid``, ``test``: those the source has)."""

    splits: dict[str, list[str]]

    def __getitem__(self, split: str) -> list[str]:
        return self.splits[split]


def tokenize(text: str) -> list[str]:
    """Whitespace-separated words, an ``<eos>`` after every line (PTB's language-model convention)."""
    out: list[str] = []
    for line in text.splitlines():
        out.extend(line.split())
        out.append(EOS)
    return out


def embedded_ptb_files() -> dict[str, Path]:
    """``{split: path}`` of the PTB files shipped with the package (validation and test)."""
    root = resources.files("lossland") / "resources"
    return {s: Path(str(root / f"ptb.{s}.txt.gz")) for s in EMBEDDED_PTB_SPLITS}


def _read_text_file(path: Path, where: str) -> str:
    try:
        blob = path.read_bytes()
        if path.suffix == ".gz":
            blob = gzip.decompress(blob)
        return blob.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise DataError(f"{where}: cannot read {path} ({type(e).__name__}: {e}); expected a UTF-8 text file "
                        "(or its .gz), one sentence per line") from None


def read_ptb(path: str | os.PathLike, splits: Sequence[str] = PTB_SPLITS) -> RawText:
    """Read ``ptb.<split>.txt`` (or ``.txt.gz``) of each of ``splits`` from folder ``path``;
    a missing folder raises :class:`FileNotFoundError`, a missing or unreadable file :class:`DataError`."""
    folder = Path(path)
    where = f"ptb source {folder}"
    if not folder.is_dir():
        raise FileNotFoundError(f"{where}: no such folder; expected a folder with "
                                + ", ".join(f"ptb.{s}.txt" for s in PTB_SPLITS))
    out = {}
    for split in splits:
        found = [p for p in (folder / f"ptb.{split}.txt", folder / f"ptb.{split}.txt.gz") if p.is_file()]
        if not found:
            raise DataError(f"{where}: ptb.{split}.txt is missing; expected a folder with "
                            + ", ".join(f"ptb.{s}.txt" for s in PTB_SPLITS))
        out[split] = tokenize(_read_text_file(found[0], where))
    return RawText(out)


def read_text_source(source: str, path: str | os.PathLike | None = None,
                     splits: Iterable[str] | None = None) -> RawText:
    """The tokens of a text source's ``splits`` (default: all it has)."""
    if source == "ptb-embedded":
        files = embedded_ptb_files()
        wanted = list(splits or EMBEDDED_PTB_SPLITS)
        missing = [s for s in wanted if s not in files]
        if missing:
            raise ValueError(f"source ptb-embedded has no {', '.join(missing)} split; allowed: "
                             f"{', '.join(EMBEDDED_PTB_SPLITS)} (PTB's training split needs source ptb)")
        return RawText({s: tokenize(_read_text_file(files[s], "ptb-embedded")) for s in wanted})
    if source == "ptb":
        if not path:
            raise ValueError("source ptb needs a path: a folder with ptb.train.txt, ptb.valid.txt and ptb.test.txt")
        return read_ptb(path, list(splits or PTB_SPLITS))
    raise ValueError(f"unknown text source {source!r}; allowed: {', '.join(TEXT_SOURCES)}")


def build_vocabulary(tokens: Sequence[str], size: int | None = None) -> tuple[str, ...]:
    """The ``size`` most frequent of ``tokens`` (all when ``None``), ``<unk>`` and ``<eos>`` always
    among them; ties go to the word seen first. Order: ``<unk>``, ``<eos>``, then by frequency."""
    counts = collections.Counter(tokens)
    first = {w: i for i, w in reversed(list(enumerate(tokens)))}
    words = sorted((w for w in counts if w not in (UNK, EOS)), key=lambda w: (-counts[w], first[w]))
    if size is not None:
        if size < 2:
            raise ValueError(f"vocab_size {size}: needs at least 2 (<unk> and <eos>)")
        words = words[:size - 2]
    return (UNK, EOS, *words)


def encode(tokens: Sequence[str], vocabulary: Sequence[str]) -> torch.Tensor:
    """Token ids (int64); words outside ``vocabulary`` map to ``<unk>``'s id."""
    index = {w: i for i, w in enumerate(vocabulary)}
    unk = index[UNK]
    return torch.tensor([index.get(t, unk) for t in tokens], dtype=torch.int64)


def sequences(ids: torch.Tensor, seq_len: int) -> Split:
    """Non-overlapping sequences of ``seq_len`` tokens: ``x[i] = ids[iT:(i+1)T]`` and its next
    tokens ``y[i] = ids[iT+1:(i+1)T+1]``; a last incomplete sequence is dropped."""
    if seq_len < 1:
        raise ValueError(f"seq_len {seq_len}: must be positive")
    n = max((int(ids.numel()) - 1) // seq_len, 0)
    x = ids[:n * seq_len].reshape(n, seq_len)
    y = ids[1:n * seq_len + 1].reshape(n, seq_len)
    return Split(x.clone(), y.clone())  # own storage each (safetensors refuses shared memory)


def prepare_text(
    raw: RawText,
    *,
    source: str = "ptb",
    train_split: str | None = None,
    test_split: str | None = None,
    val_split: str | None = None,
    train_tokens: int | None = None,
    test_tokens: int | None = None,
    val_tokens: int | None = None,
    vocab_size: int | None = None,
    seq_len: int = 35,
) -> PreparedDataset:
    """Token sequences of the ``train``, ``test`` (and ``val``) splits, read from the source splits
    ``*_split`` (defaults: :data:`DEFAULT_SPLITS`), each the first ``*_tokens`` tokens (None: all).
    Splits of ours that read the same source split take consecutive, non-overlapping slices of it in
    the order train, val, test (so a validation-split training slice never overlaps a test slice cut
    from it). The vocabulary is built from the training tokens (:func:`build_vocabulary`); the classes
    of the result are its words, ``mean`` and ``std`` are empty and ``meta["kind"]`` is ``"text"``."""
    defaults = DEFAULT_SPLITS.get(source, DEFAULT_SPLITS["ptb"])
    chosen = {"train": (train_split or defaults["train"], train_tokens),
              "val": (val_split, val_tokens),
              "test": (test_split or defaults["test"], test_tokens)}
    offsets: dict[str, int] = {}
    tokens: dict[str, list[str]] = {}
    for name, (split, size) in chosen.items():
        if split is None:
            continue
        if split not in raw.splits:
            raise ValueError(f"{name}_split {split!r}: not in this source; allowed: {', '.join(raw.splits)}")
        start = offsets.get(split, 0)
        stop = len(raw[split]) if size is None else start + int(size)
        if stop > len(raw[split]):
            raise ValueError(f"{name}_tokens {size}: the {split} split has {len(raw[split]) - start} tokens left "
                             f"(of {len(raw[split])}); allowed: at most that many, or null for all")
        tokens[name] = raw[split][start:stop]
        offsets[split] = stop
    vocabulary = build_vocabulary(tokens["train"], vocab_size)
    # a sequence needs seq_len + 1 tokens (its targets run one token ahead)
    splits = {name: sequences(encode(t, vocabulary), seq_len) for name, t in tokens.items()}
    empty = [n for n, s in splits.items() if len(s) == 0]
    if empty:
        raise ValueError(f"{', '.join(empty)}: fewer than seq_len + 1 = {seq_len + 1} tokens; "
                         "allowed: more tokens or a shorter seq_len")
    ordered = {k: splits[k] for k in ("train", "val", "test") if k in splits}
    return PreparedDataset(ordered, vocabulary, (), (), {
        "kind": "text", "seq_len": int(seq_len),
        "sizes": {k: len(v) for k, v in ordered.items()},
        "tokens": {k: int(v.y.numel()) for k, v in ordered.items()},
        "source_splits": {k: chosen[k][0] for k in ordered},
        "unk_share": {k: float((v.y == 0).double().mean()) for k, v in ordered.items()}})
