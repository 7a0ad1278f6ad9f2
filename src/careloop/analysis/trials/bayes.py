"""Reading a two-arm test the Bayesian way: beta-binomial probability that one arm is better."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import integrate, special, stats

from careloop.core.errors import InputError

__all__ = [
    "BayesResult",
    "probability_better",
]


@dataclass(frozen=True)
class BayesResult:
    """Posterior comparison of two arms under independent beta priors."""

    probability_better: float
    """Posterior probability that the intervention's proportion is higher."""
    posterior: tuple[tuple[float, float], tuple[float, float]]
    """Beta posterior parameters (a, b) for (intervention, comparator)."""
    mean: tuple[float, float]
    """Posterior means."""
    interval: tuple[tuple[float, float], tuple[float, float]]
    """95% equal-tailed credible intervals."""
    method: str
    """``closed form``, ``numerical integration`` or ``Monte Carlo (n draws, seed s)``."""

    def summary(self, labels: tuple[str, str] = ("intervention", "comparator")) -> str:
        """Plain-language summary."""
        a, b = labels
        return (
            f"Posterior probability that {a} has a higher rate than {b}: "
            f"{100 * self.probability_better:.1f}% ({self.method}). Posterior means "
            f"{100 * self.mean[0]:.1f}% vs {100 * self.mean[1]:.1f}%."
        )


def _prob_b_beats_a_closed(a_a: float, b_a: float, a_b: int, b_b: float) -> float:
    """P(p_B > p_A) for p_A ~ Beta(a_a, b_a), p_B ~ Beta(a_b, b_b) with integer a_b.

    The finite sum of Evan Miller (2015, "Formulas for Bayesian A/B testing"),
    in log space for stability.
    """
    i = np.arange(a_b)
    terms = (
        special.betaln(a_a + i, b_a + b_b)
        - np.log(b_b + i)
        - special.betaln(1 + i, b_b)
        - special.betaln(a_a, b_a)
    )
    return float(np.exp(special.logsumexp(terms)))


def probability_better(
    events1: int,
    n1: int,
    events0: int,
    n0: int,
    *,
    prior: tuple[float, float] = (1.0, 1.0),
    draws: int | None = None,
    seed: int | None = None,
) -> BayesResult:
    """Posterior probability that the intervention (1) has a higher proportion than comparator (0).

    Beta(``prior``) priors (default uniform) and binomial likelihoods give
    Beta posteriors. The probability is exact — a finite sum when the
    intervention's posterior ``a`` is a whole number, otherwise
    ``∫ f₁(x) F₀(x) dx`` by adaptive quadrature — unless ``draws`` asks for a
    Monte Carlo estimate (with ``seed``).
    """
    for x, n in ((events1, n1), (events0, n0)):
        if n < 0 or x < 0 or x > n:
            raise InputError("Counts must satisfy 0 <= events <= n.")
    a0, b0 = prior
    if a0 <= 0 or b0 <= 0:
        raise InputError("Beta prior parameters must be positive.")
    post1 = (a0 + events1, b0 + n1 - events1)
    post0 = (a0 + events0, b0 + n0 - events0)
    if draws is not None:
        rng = np.random.default_rng(seed)
        s1 = rng.beta(*post1, size=draws)
        s0 = rng.beta(*post0, size=draws)
        prob = float(np.mean(s1 > s0))
        method = f"Monte Carlo ({draws} draws, seed {seed})"
    elif float(post1[0]).is_integer() and post1[0] < 100_000:
        prob = _prob_b_beats_a_closed(post0[0], post0[1], int(post1[0]), post1[1])
        method = "closed form"
    else:
        dist1, dist0 = stats.beta(*post1), stats.beta(*post0)
        prob = float(integrate.quad(lambda t: dist1.pdf(t) * dist0.cdf(t), 0, 1, limit=200)[0])
        method = "numerical integration"
    d1, d0 = stats.beta(*post1), stats.beta(*post0)
    return BayesResult(
        probability_better=min(1.0, max(0.0, prob)),
        posterior=(post1, post0),
        mean=(float(d1.mean()), float(d0.mean())),
        interval=(
            (float(d1.ppf(0.025)), float(d1.ppf(0.975))),
            (float(d0.ppf(0.025)), float(d0.ppf(0.975))),
        ),
        method=method,
    )
