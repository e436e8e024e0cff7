"""GRU inference over token ids, on CPU: no gradient, no dropout.

The first layer's input gates of every token are computed once per model
(`InferenceCache`) and looked up per position, where a packed `nn.GRU`
projects the inputs again at every step; like a packed sequence, only real
positions run, and both directions of a layer run side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from chatbot.model.gru import flat_weights, longest_first, stacked_weights


@dataclass(frozen=True)
class InferenceWeights:
    """A GRU's weights laid out for inference over token ids.

    table: (D * V, 3H) every token's first-layer input gates, direction d's
        block at rows [d * V, (d + 1) * V): `embedding @ W_ih^T + b_ih`.
    layers: per layer, (W_ih^T, W_hh^T, b_ih, b_hh) of its D directions
        stacked: (D, I, 3H), (D, H, 3H), (D, 1, 3H), (D, 1, 3H).
    """

    table: torch.Tensor
    layers: tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], ...]


def version_key(tensors: Sequence[torch.Tensor]) -> tuple[int, ...]:
    """Changes when any of `tensors` changes in place (its version) or is replaced
    (its storage): what a cache of values derived from them is keyed on."""
    return tuple(t._version for t in tensors) + tuple(t.data_ptr() for t in tensors)


class InferenceCache:
    """`InferenceWeights` of an embedding and a GRU, kept until any of their
    tensors changes (in place, by `load_state_dict`, or replaced).

    They carry no gradient: use them only when none is recorded.
    """

    def __init__(self) -> None:
        self._weights: InferenceWeights | None = None
        self._key: tuple[int, ...] = ()

    def get(self, embedding: torch.Tensor, gru: nn.GRU) -> InferenceWeights:
        key = version_key([embedding, *flat_weights(gru)])
        if self._weights is None or key != self._key:
            directions = 2 if gru.bidirectional else 1
            with torch.no_grad():
                layers = []
                for layer in range(gru.num_layers):
                    w_ih, w_hh, b_ih, b_hh = stacked_weights(gru, layer, directions)
                    layers.append(
                        (
                            w_ih.transpose(1, 2).contiguous(),
                            w_hh.transpose(1, 2).contiguous(),
                            b_ih.unsqueeze(1).clone(),
                            b_hh.unsqueeze(1).clone(),
                        )
                    )
                w_ih_t, _, b_ih, _ = layers[0]
                table = torch.baddbmm(b_ih, embedding.expand(directions, -1, -1), w_ih_t)
            self._weights = InferenceWeights(table.flatten(0, 1), tuple(layers))
            self._key = key
        return self._weights


def run_gru_on_tokens(
    gru: nn.GRU, weights: InferenceWeights, tokens: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inference: `run_gru(gru, embedding(tokens), None, lengths)` with no
    gradient and no dropout, from `weights` (`InferenceCache.get(embedding, gru)`):
    the first layer's input gates are looked up per token.

    Like a packed sequence, step t runs only the rows still inside their length;
    the positions that run are kept step after step in one (D, N, ...) tensor.
    The backward direction's step t of row b reads position lengths[b] - 1 - t,
    so both directions run the same rows at every step, side by side.

    Args:
        tokens: (B, T) int64 ids.
        lengths: (B,) int64, each in [1, T].

    Returns:
        outputs (B, T, D * H), zero past each length, and the final hidden
        (L * D, B, H), each row's state after its own last step.
    """
    directions = 2 if gru.bidirectional else 1
    b, t_len = tokens.shape
    h, device = gru.hidden_size, tokens.device
    order, ranked, sizes = longest_first(lengths.to(device), b, t_len)
    # (step, rank) of every position that runs, step after step (row-major nonzero).
    running = torch.arange(len(sizes), device=device).unsqueeze(1) < ranked
    steps, ranks = running.nonzero().unbind(1)
    rows, row_lengths = order[ranks], ranked[ranks]
    # Flat (row * T + position) of what each direction's packed positions read.
    forward_at = rows * t_len + steps
    read_at = [forward_at, forward_at + (row_lengths - 1 - 2 * steps)][:directions]
    flat = tokens.reshape(-1)
    vocab = weights.table.shape[0] // directions
    ids = torch.stack([flat[at] + d * vocab for d, at in enumerate(read_at)])
    gates = F.embedding(ids, weights.table)
    last = (steps == row_lengths - 1).nonzero().squeeze(1)
    finals = []
    mirror = None
    for layer, (_, w_hh_t, _, b_hh) in enumerate(weights.layers):
        outs = _packed_layer(gates, w_hh_t, b_hh, sizes)
        finals.append(outs[:, last])
        if layer + 1 == gru.num_layers:
            break
        layer_input = outs[:, :-1]
        if directions == 2:
            if mirror is None:
                # mirror[n]: the packed index of the position the other direction
                # reads at n (the same row, mirrored within its length).
                index = torch.empty(b * t_len, dtype=torch.long, device=device)
                index[forward_at] = torch.arange(len(forward_at), device=device)
                mirror = index[read_at[1]]
            forward_input = torch.cat([outs[0, :-1], outs[1, mirror]], dim=-1)
            layer_input = torch.stack([forward_input, forward_input[mirror]])
        w_ih_t, _, b_ih, _ = weights.layers[layer + 1]
        gates = torch.baddbmm(b_ih, layer_input, w_ih_t)
    # Every (position, direction) of the padded output gathers its packed row,
    # or the zero row after the last one: one pass, no zero fill and scatter.
    n_real = outs.shape[1] - 1
    source = torch.full((directions, b * t_len), n_real, dtype=torch.long, device=device)
    for d, at in enumerate(read_at):
        source[d].index_copy_(0, at, torch.arange(n_real, device=device))
    source += torch.arange(directions, device=device).unsqueeze(1) * (n_real + 1)
    outputs = outs.view(-1, h).index_select(0, source.t().reshape(-1))
    final = gates.new_empty(gru.num_layers * directions, b, h)
    final[:, rows[last]] = torch.cat(finals)
    return outputs.view(b, t_len, directions * h), final


def _packed_layer(
    gates: torch.Tensor, w_hh_t: torch.Tensor, bias: torch.Tensor, sizes: Sequence[int]
) -> torch.Tensor:
    """(D, N, 3H) input gates of the packed positions -> (D, N + 1, H) their
    outputs and a row of zeros, from W_hh^T (D, H, 3H) and b_hh (D, 1, 3H);
    `sizes[t]` rows (longest first) run at step t, from a zero state.
    """
    d, n_real, _ = gates.shape
    h = w_hh_t.shape[1]
    outs = gates.new_empty(d, n_real + 1, h)
    outs[:, n_real] = 0.0
    # The rows that run at step t + 1 are a prefix of those at step t, so each
    # step's state is a view of the previous step's outputs.
    state = gates.new_zeros(d, sizes[0], h)
    start = 0
    for m in sizes:
        end = start + m
        previous = state[:, :m]
        gh = torch.baddbmm(bias, previous, w_hh_t)
        gi = gates[:, start:end]
        rz = torch.add(gi[..., : 2 * h], gh[..., : 2 * h]).sigmoid_()
        n = torch.addcmul(gi[..., 2 * h :], rz[..., :h], gh[..., 2 * h :]).tanh_()
        state = torch.lerp(n, previous, rz[..., h:], out=outs[:, start:end])
        start = end
    return outs
