"""Fitting the ranker's weights (listwise softmax) and the gate (logistic regression)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from chatbot.replies.fit import L2, fit_gate, fit_listwise
from chatbot.replies.rank import RankerWeights

W_TRUE = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
GATE_TRUE = (1.5, 2.0, -1.0, 0.8, 2.5)
"""gate_score, gate_similarity, gate_generated, gate_input, gate_bias of the simulated judge."""


def lists(n: int = 400, length: int = 10, seed: int = 0) -> torch.Tensor:
    """(n, length, 3) random features, the argmax of x @ W_TRUE moved to item 0."""
    x = torch.randn(n, length, 3, generator=torch.Generator().manual_seed(seed),
                    dtype=torch.float64)
    top = (x @ W_TRUE).argmax(1)
    order = torch.arange(length).repeat(n, 1)
    order[torch.arange(n), top] = 0
    order[:, 0] = top
    return x[torch.arange(n).unsqueeze(1), order]


Row = tuple[float, float, float, float]


def judged(n: int = 2000, seed: int = 0) -> tuple[list[Row], list[bool]]:
    """Rows (score, similarity, generated, input log p) and labels drawn from the
    logistic GATE_TRUE."""
    g = torch.Generator().manual_seed(seed)
    score = torch.randn(n, generator=g, dtype=torch.float64)
    similarity = torch.rand(n, generator=g, dtype=torch.float64)
    generated = (torch.rand(n, generator=g, dtype=torch.float64) < 0.5).double()
    understood = -4.0 + torch.randn(n, generator=g, dtype=torch.float64)
    a, b, c, d, e = GATE_TRUE
    p = torch.sigmoid(a * score + b * similarity + c * generated + d * understood + e)
    labels = torch.rand(n, generator=g, dtype=torch.float64) < p
    rows = list(zip(score.tolist(), similarity.tolist(), generated.tolist(),
                    understood.tolist(), strict=True))
    return rows, labels.tolist()


def design(rows: list[Row]) -> torch.Tensor:
    """(n, 5) rows with a column of ones for the bias."""
    x = torch.tensor(rows, dtype=torch.float64)
    return torch.cat([x, torch.ones(len(rows), 1, dtype=torch.float64)], dim=1)


def newton_gate(rows: list[Row], labels: list[bool]) -> torch.Tensor:
    """The same penalised logistic regression, solved by Newton's method."""
    x, y = design(rows), torch.tensor(labels, dtype=torch.float64)
    penalty = 2 * L2 * torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    w = torch.zeros(5, dtype=torch.float64)
    for _ in range(30):
        p = torch.sigmoid(x @ w)
        gradient = x.T @ (p - y) / len(y) + penalty * w
        hessian = x.T @ (x * (p * (1 - p)).unsqueeze(1)) / len(y) + torch.diag(penalty)
        w = w - torch.linalg.solve(hessian, gradient)
    return w


def test_lists_put_the_best_item_first() -> None:
    x = lists()
    assert x.shape == (400, 10, 3)
    assert bool(((x @ W_TRUE).argmax(1) == 0).all())


@pytest.fixture(scope="module")
def fitted() -> torch.Tensor:
    return torch.tensor(fit_listwise(lists()), dtype=torch.float64)


def test_fit_listwise_recovers_the_direction_of_the_true_weights(fitted: torch.Tensor) -> None:
    assert float(torch.cosine_similarity(fitted, W_TRUE, dim=0)) > 0.99
    ranked_first = ((lists() @ fitted).argmax(1) == 0).double().mean()
    assert float(ranked_first) > 0.9


def test_fit_listwise_is_a_stationary_point_of_its_objective(fitted: torch.Tensor) -> None:
    x = lists()
    w = fitted.clone().requires_grad_()
    objective = -torch.log_softmax(x @ w, dim=1)[:, 0].mean() + L2 * (w * w).sum()
    objective.backward()  # type: ignore[no-untyped-call]
    assert w.grad is not None
    assert float(w.grad.abs().max()) < 1e-4


def test_fit_listwise_is_deterministic(fitted: torch.Tensor) -> None:
    assert fit_listwise(lists()) == fitted.tolist()


@pytest.fixture(scope="module")
def gate() -> tuple[RankerWeights, RankerWeights]:
    base = RankerWeights(match=0.7, log_p=0.2, pmi=0.9, mmi_lambda=0.3, gate_score=5.0,
                         gate_similarity=5.0, gate_generated=5.0, gate_input=5.0, gate_bias=5.0,
                         fitted_on="ranker fitted on 12 turns")
    return base, fit_gate(base, *judged())


def test_fit_gate_recovers_the_true_gate_within_the_sampling_noise(
    gate: tuple[RankerWeights, RankerWeights],
) -> None:
    _, weights = gate
    fitted = torch.tensor([weights.gate_score, weights.gate_similarity, weights.gate_generated,
                           weights.gate_input, weights.gate_bias], dtype=torch.float64)
    truth = torch.tensor(GATE_TRUE, dtype=torch.float64)
    # Standard errors of the maximum-likelihood estimate: the inverse Fisher information.
    x = design(judged()[0])
    p = torch.sigmoid(x @ truth)
    errors = torch.linalg.inv(x.T @ (x * (p * (1 - p)).unsqueeze(1))).diagonal().sqrt()
    assert errors.tolist() == pytest.approx([0.077, 0.205, 0.116, 0.062, 0.270], abs=0.002)
    assert bool(((fitted - truth).abs() < 3 * errors).all()), (fitted, errors)


def test_fit_gate_equals_newtons_method(gate: tuple[RankerWeights, RankerWeights]) -> None:
    _, weights = gate
    fitted = [weights.gate_score, weights.gate_similarity, weights.gate_generated,
              weights.gate_input, weights.gate_bias]
    assert fitted == pytest.approx(newton_gate(*judged()).tolist(), abs=1e-4)


def test_fit_gate_changes_only_the_gate(gate: tuple[RankerWeights, RankerWeights]) -> None:
    base, weights = gate
    restored = dataclasses.replace(weights, gate_score=5.0, gate_similarity=5.0,
                                   gate_generated=5.0, gate_input=5.0, gate_bias=5.0)
    assert restored == base
    assert all(round(v, 6) == v for v in (weights.gate_score, weights.gate_similarity,
                                          weights.gate_generated, weights.gate_input,
                                          weights.gate_bias))
