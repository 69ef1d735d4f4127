"""im2016's third model: a word-level LSTM language model (Zaremba et al., 2014's shape).

Embedding → (dropout) → stacked LSTM → (dropout) → linear decoder over the vocabulary.
It takes token ids ``N×T`` (int64) and returns logits ``N×V×T``, the layout
:func:`torch.nn.functional.cross_entropy` reads as a per-token loss, so the one evaluation
loop (:func:`lossland.evaluation.evaluate`) gives the mean per-token cross-entropy (its
``exp`` is the perplexity) and the per-token accuracy. Every sequence starts from a zero
state. Default init (:meth:`LSTMLanguageModel.default_init`): every parameter uniform
in ±0.1, as Zaremba et al.
"""

from __future__ import annotations

import torch
from torch import nn


class LSTMLanguageModel(nn.Module):
    def __init__(self, vocab_size: int, embedding: int = 200, hidden: int = 200, layers: int = 1,
                 dropout: float = 0.0, tie_weights: bool = False) -> None:
        super().__init__()
        if tie_weights and embedding != hidden:
            raise ValueError(f"tie_weights needs embedding == hidden (got {embedding} and {hidden})")
        self.embedding = nn.Embedding(vocab_size, embedding)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embedding, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.decoder = nn.Linear(hidden, vocab_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        self.default_init()

    @torch.no_grad()
    def default_init(self, scale: float = 0.1) -> None:
        """Every parameter uniform in ``±scale`` (Zaremba et al.: 0.1 for their small model)."""
        for p in self.parameters():
            nn.init.uniform_(p, -scale, scale)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.dropout(self.embedding(tokens)))
        return self.decoder(self.dropout(h)).transpose(1, 2)
