"""Reference: Cox-Snell R² from a C statistic by simulation (not run by the suite).

Riley, Van Calster & Collins (Stat Med 2021;40:859–64), as pmsampsize's
``cstat2rsq`` does it: simulate a million linear predictors, normal with
SD 1 in non-events and mean √2 Φ⁻¹(C) in events, fit the logistic calibration
model and take 1 − exp(−LR/n). careloop computes the large-sample limit by
quadrature (``careloop.analysis.risk.cox_snell_r2_from_c_statistic``); run

    python tests/analysis/reference/cstat_r2_simulation.py

to compare. Output (numpy default_rng seeds 1–3):

    C 0.89, prevalence 0.174: simulated [0.2909, 0.2901, 0.291]; quadrature 0.2910
    C 0.81, prevalence 0.18: simulated [0.1827, 0.1822, 0.1829]; quadrature 0.1828
    C 0.7, prevalence 0.05: simulated [0.0249, 0.0255, 0.0257]; quadrature 0.0254
"""

from __future__ import annotations

import math

import numpy as np
import statsmodels.api as sm
from scipy import stats

from careloop.analysis.risk import cox_snell_r2_from_c_statistic


def simulate(c: float, prevalence: float, seed: int, n: int = 1_000_000) -> float:
    rng = np.random.default_rng(seed)
    mu = math.sqrt(2) * stats.norm.ppf(c)
    n_events = int(prevalence * n)
    lp = np.concatenate([rng.normal(mu, 1, n_events), rng.normal(0, 1, n - n_events)])
    y = np.concatenate([np.ones(n_events), np.zeros(n - n_events)])
    fit = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit()
    return 1 - math.exp(-(fit.null_deviance - fit.deviance) / n)


if __name__ == "__main__":
    for c, phi in [(0.89, 0.174), (0.81, 0.18), (0.7, 0.05)]:
        sims = [round(simulate(c, phi, seed), 4) for seed in (1, 2, 3)]
        quad = cox_snell_r2_from_c_statistic(c, phi)
        print(f"C {c}, prevalence {phi}: simulated {sims}; quadrature {quad:.4f}")
