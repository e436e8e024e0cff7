"""A GRU over whole sequences with a hand-written backward, for training on CPU.

On CPU, `nn.GRU` records every time step's cell in the autograd graph, so its
backward runs a dozen small kernels per step and one small weight-gradient
matmul per step and weight. Here the input projections of all steps are one
matmul, the recurrence saves its gates, and the backward loop does one
(B, 3H) x (3H, H) matmul per step; the weight gradients are one matmul each
over all steps. Directions run side by side as a leading dimension, so a
bidirectional layer costs one batched matmul per step.

The parameters stay those of an `nn.GRU` (same names and shapes), so models
load either way. On CUDA (cuDNN), and on CPU when no gradient is recorded,
`nn.GRU` is faster and is used instead.

For inference over token ids, `chatbot.model.inference` runs the same GRU
faster still (input gates looked up per token).
Same equations as `nn.GRU`:

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from chatbot.model.dropout import dropout


class _GRULayer(torch.autograd.Function):
    """One GRU layer, D directions side by side, over time-major input.

    Inputs: x (D, T, B, I), h0 (D, B, H), w_ih (D, 3H, I), w_hh (D, 3H, H),
    b_ih (D, 3H), b_hh (D, 3H), the matmul dtype, and `sizes`: step t runs
    the first sizes[t] rows (rows sorted longest first; non-increasing).
    Output: (D, T, B, H), the hidden at every step, zero where a row has ended.

    Like a `PackedSequence`, everything per position (input projections,
    gates, gradients) is kept only for the N positions that run, step after
    step in one (D, N, ...) tensor; step t is the slice [offsets[t], offsets[t + 1]).
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        h0: torch.Tensor,
        w_ih: torch.Tensor,
        w_hh: torch.Tensor,
        b_ih: torch.Tensor,
        b_hh: torch.Tensor,
        compute: torch.dtype,
        sizes: list[int],
    ) -> torch.Tensor:
        d, t_len, b, i = x.shape
        h = h0.shape[-1]
        index = _packing_index(sizes, b, x.device)
        packed = x.reshape(d, t_len * b, i) if index is None else x[:, index[0], index[1]]
        if compute == x.dtype:
            gi = torch.baddbmm(b_ih.unsqueeze(1), packed, w_ih.transpose(1, 2))
        else:
            gi = torch.bmm(packed.to(compute), w_ih.to(compute).transpose(1, 2)).to(x.dtype)
            gi += b_ih.unsqueeze(1)
        w_hh_t = w_hh.to(compute).transpose(1, 2)
        bias_hh = b_hh.unsqueeze(1)
        n_real = gi.shape[1]
        # Every step writes into these, so nothing is stacked or concatenated
        # afterwards; states[:, 0] is h0, states[:, t + 1] the output of step t.
        states = x.new_zeros(d, t_len + 1, b, h)
        states[:, 0] = h0
        gates = x.new_empty(d, n_real, 2 * h)
        news = x.new_empty(d, n_real, h)
        hiddens = x.new_empty(d, n_real, 3 * h)
        start = 0
        for t, m in enumerate(sizes):
            end = start + m
            state, gh, g = states[:, t, :m], hiddens[:, start:end], gi[:, start:end]
            if compute == x.dtype:
                torch.baddbmm(bias_hh, state, w_hh_t, out=gh)
            else:
                torch.add(torch.bmm(state.to(compute), w_hh_t), bias_hh, out=gh)
            rz = torch.add(g[..., : 2 * h], gh[..., : 2 * h], out=gates[:, start:end]).sigmoid_()
            n = news[:, start:end]
            torch.addcmul(g[..., 2 * h :], rz[..., :h], gh[..., 2 * h :], out=n)
            torch.lerp(n.tanh_(), state, rz[..., h:], out=states[:, t + 1, :m])
            start = end
        ctx.compute, ctx.sizes, ctx.x_shape = compute, sizes, x.shape
        ctx.save_for_backward(packed, w_ih, w_hh, states, gates, news, hiddens, *(index or ()))
        return states[:, 1:]

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        packed, w_ih, w_hh, states, rz, n, hiddens, *index = ctx.saved_tensors
        compute: torch.dtype = ctx.compute
        d, t_len, b, i = ctx.x_shape
        h = states.shape[-1]
        before = states[:, :-1]
        previous = before[:, index[0], index[1]] if index else before.reshape(d, t_len * b, h)
        ghn = hiddens[..., 2 * h :]
        r, z = rz[..., :h], rz[..., h:]
        # Factors that do not depend on the incoming gradient, for all steps at once:
        # to_n = (1 - z)(1 - n^2), to_z = (h - n) z (1 - z), to_r = ghn r (1 - r).
        keep = 1 - z
        to_n = torch.addcmul(keep, keep, n * n, value=-1)
        to_z = (previous - n).mul_(keep).mul_(z)
        to_r = torch.addcmul(r, r, r, value=-1).mul_(ghn)
        grad_gh = torch.empty_like(hiddens)
        grad_n = torch.empty_like(n)
        w_hh_c = w_hh.to(compute)
        carry = states.new_zeros(d, b, h)
        end = grad_gh.shape[1]
        for t in reversed(range(t_len)):
            m = ctx.sizes[t]
            start = end - m
            dh = grad_out[:, t, :m] + carry[:, :m]
            step = grad_gh[:, start:end]
            dn = torch.mul(dh, to_n[:, start:end], out=grad_n[:, start:end])
            torch.mul(dh, to_z[:, start:end], out=step[..., h : 2 * h])
            torch.mul(dn, to_r[:, start:end], out=step[..., :h])
            torch.mul(dn, r[:, start:end], out=step[..., 2 * h :])
            kept = dh * z[:, start:end]
            if compute == packed.dtype:
                torch.baddbmm(kept, step, w_hh, out=carry[:, :m])
            else:
                torch.add(torch.bmm(step.to(compute), w_hh_c), kept, out=carry[:, :m])
            end = start
        # The input gates' gradient is the hidden gates' one, but for its n part
        # (grad_n): the matmuls take the two parts as views, without a merged copy.
        gh_c, n_c = grad_gh.to(compute), grad_n.to(compute)
        rz_c = gh_c[..., : 2 * h]
        grads: list[torch.Tensor | None] = [None] * 8
        if ctx.needs_input_grad[0]:
            w = w_ih.to(compute)
            grad_x = torch.bmm(rz_c, w[:, : 2 * h]).add_(torch.bmm(n_c, w[:, 2 * h :]))
            grad_x = grad_x.to(packed.dtype)
            if index:
                spread = grad_x.new_zeros(d, t_len * b, i).index_copy_(1, index[2], grad_x)
                grads[0] = spread.view(d, t_len, b, i)
            else:
                grads[0] = grad_x.view(d, t_len, b, i)
        if ctx.needs_input_grad[1]:
            grads[1] = carry
        if ctx.needs_input_grad[2]:
            inputs = packed.to(compute)
            grad_w = torch.cat([rz_c.transpose(1, 2) @ inputs, n_c.transpose(1, 2) @ inputs], 1)
            grads[2] = grad_w.to(w_ih.dtype)
        if ctx.needs_input_grad[3]:
            grads[3] = torch.bmm(gh_c.transpose(1, 2), previous.to(compute)).to(w_hh.dtype)
        hidden_sums = grad_gh.sum(1)
        if ctx.needs_input_grad[4]:
            grads[4] = torch.cat([hidden_sums[:, : 2 * h], grad_n.sum(1)], 1)
        if ctx.needs_input_grad[5]:
            grads[5] = hidden_sums
        return tuple(grads)


def _packing_index(
    sizes: list[int], b: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(steps, rows, steps * B + rows) of the positions that run, step by step;
    None when every row runs every step.
    """
    if all(m == b for m in sizes):
        return None
    counts = torch.tensor(sizes, device=device)
    steps = torch.arange(len(sizes), device=device).repeat_interleave(counts)
    rows = torch.cat([torch.arange(m, device=device) for m in sizes])
    return steps, rows, steps * b + rows


def gru_gates(gi: torch.Tensor, gh: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """One GRU step from its input gates `gi` (B, 3H) = W_ih x + b_ih, hidden
    gates `gh` (B, 3H) = W_hh h + b_hh and `hidden` h (B, H): the new hidden.
    """
    h = hidden.shape[-1]
    gi_rz, gi_n = gi.split_with_sizes([2 * h, h], dim=1)
    gh_rz, gh_n = gh.split_with_sizes([2 * h, h], dim=1)
    r, z = torch.sigmoid(gi_rz + gh_rz).chunk(2, dim=1)
    return torch.lerp(torch.addcmul(gi_n, r, gh_n).tanh_(), hidden, z)


def flat_weights(gru: nn.GRU) -> list[torch.Tensor]:
    """The GRU's parameters in `nn.GRU`'s order: per layer and direction, weight_ih,
    weight_hh, bias_ih, bias_hh. Its own list (`_flat_weights`, kept current on
    assignment and `.to()`) where torch has one: cheaper than `parameters()`,
    which a decoding step would walk every token.
    """
    flat = getattr(gru, "_flat_weights", None)
    return cast(list[torch.Tensor], flat) if flat else list(gru.parameters())


def stacked_weights(gru: nn.GRU, layer: int, directions: int) -> list[torch.Tensor]:
    """(D, ...) stacks of layer `layer`'s w_ih, w_hh, b_ih, b_hh over its directions
    (views, not copies, for one direction).
    """
    suffixes = ["", "_reverse"][:directions]
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    found = [[getattr(gru, f"{name}_l{layer}{suffix}") for suffix in suffixes] for name in names]
    return [torch.stack(ws) if len(ws) > 1 else ws[0].unsqueeze(0) for ws in found]


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverses each row's first `lengths[b]` steps of time-major `x` (T, B, ...);
    the padding after them stays in place. Its own inverse.
    """
    steps = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
    ends = lengths.to(x.device).unsqueeze(0)
    index = torch.where(steps < ends, ends - 1 - steps, steps)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, index)


def run_gru(
    gru: nn.GRU,
    x: torch.Tensor,
    hidden: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Runs batch-first `gru` like `gru(pack(x, lengths), hidden)` then unpacking.

    Args:
        x: (B, T, I).
        hidden: (L * D, B, H) initial state; None is zeros.
        lengths: (B,) real lengths, each at least 1; None means all T.

    Returns:
        outputs (B, T, D * H), zero past each length, and the final hidden
        (L * D, B, H), each row's state at its own last real step.
    """
    if x.is_cuda or not (torch.is_grad_enabled() or torch.is_autocast_enabled("cpu")):
        # cuDNN, and inference on CPU: `nn.GRU` is faster when nothing is kept for a backward.
        return _run_module(gru, x, hidden, lengths)
    directions = 2 if gru.bidirectional else 1
    compute = x.dtype
    if torch.is_autocast_enabled("cpu"):
        compute, x = torch.get_autocast_dtype("cpu"), x.float()
    b, t_len, _ = x.shape
    if hidden is None:
        hidden = x.new_zeros(gru.num_layers * directions, b, gru.hidden_size)
    hidden = hidden.to(x.dtype)
    if lengths is None:
        return _run_sorted(gru, x, hidden, None, [b] * t_len, compute)
    # Rows longest first, so the rows still running at step t are a prefix
    # (what packing does): a step costs what its real tokens cost.
    order, ranked, sizes = longest_first(lengths.to(x.device), b, t_len)
    sizes += [0] * (t_len - len(sizes))
    if bool((order == torch.arange(b, device=x.device)).all()):
        return _run_sorted(gru, x, hidden, ranked, sizes, compute)
    outputs, final = _run_sorted(gru, x[order], hidden[:, order], ranked, sizes, compute)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(b, device=x.device)
    return outputs[inverse], final[:, inverse]


def longest_first(
    lengths: torch.Tensor, b: int, t_len: int
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The rows longest first (`order`, stable), their lengths, and how many of
    them run at each step up to the longest length (a non-increasing prefix count).
    """
    if lengths.numel() != b or b == 0 or int(lengths.min()) < 1 or int(lengths.max()) > t_len:
        raise ValueError(f"lengths must be {b} values in [1, {t_len}], got {lengths.tolist()}")
    order = torch.argsort(lengths, descending=True, stable=True)
    ranked = lengths[order]
    counts = torch.bincount(ranked, minlength=t_len + 1).tolist()
    sizes = []
    running = b
    for t in range(int(ranked[0])):
        running -= counts[t]
        sizes.append(running)
    return order, ranked, sizes


def _run_sorted(
    gru: nn.GRU,
    x: torch.Tensor,
    hidden: torch.Tensor,
    lengths: torch.Tensor | None,
    sizes: list[int],
    compute: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`run_gru` over rows sorted longest first; `sizes[t]` rows run at step t."""
    directions = 2 if gru.bidirectional else 1
    b, h = x.shape[0], gru.hidden_size
    last = None
    if lengths is not None:
        last = (lengths - 1).view(1, 1, b, 1).expand(directions, 1, b, h)
    layer_input = x.transpose(0, 1)
    finals = []
    for layer in range(gru.num_layers):
        if directions == 2:
            backward_input = (
                layer_input.flip(0) if lengths is None else reverse_within(layer_input, lengths)
            )
            stacked = torch.stack([layer_input, backward_input])
        else:
            stacked = layer_input.unsqueeze(0)
        h0 = hidden[layer * directions : (layer + 1) * directions]
        weights = stacked_weights(gru, layer, directions)
        out = _GRULayer.apply(stacked, h0, *weights, compute, sizes)  # type: ignore[no-untyped-call]
        finals.append(out[:, -1] if last is None else out.gather(1, last).squeeze(1))
        if directions == 2:
            back = out[1].flip(0) if lengths is None else reverse_within(out[1], lengths)
            layer_output = torch.cat([out[0], back], dim=-1)
        else:
            layer_output = out[0]
        if layer + 1 < gru.num_layers and gru.dropout and gru.training:
            layer_output = dropout(layer_output, gru.dropout, training=True)
        layer_input = layer_output
    return layer_input.transpose(0, 1), torch.cat(finals)


def _run_module(
    gru: nn.GRU,
    x: torch.Tensor,
    hidden: torch.Tensor | None,
    lengths: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    if lengths is None or int(lengths.min()) == x.shape[1]:
        result: tuple[torch.Tensor, torch.Tensor] = gru(x, hidden)
        return result
    packed = nn.utils.rnn.pack_padded_sequence(
        x, lengths.cpu(), batch_first=True, enforce_sorted=False
    )
    outputs, final = gru(packed, hidden)
    outputs, _ = nn.utils.rnn.pad_packed_sequence(
        outputs, batch_first=True, total_length=x.shape[1]
    )
    return outputs, final
