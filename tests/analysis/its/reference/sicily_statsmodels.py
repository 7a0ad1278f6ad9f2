"""Reference numbers for careloop.analysis.its computed with statsmodels directly.

The models of Lopez Bernal, Cummins & Gasparrini (IJE 2017), fitted with
statsmodels' formula interface — written here without any careloop code, so
that careloop's own design matrices, effect extraction and counterfactuals
are checked against an independent specification. The models follow the
tutorial's R code (gasparrini/2017_lopezbernal_IJE_codedata, Rcode.R) and the
R script beside this file (``sicily_reference.R``), whose output
(``sicily_reference.Rout``) is the second, fully independent reference.

Run ``python tests/analysis/its/reference/sicily_statsmodels.py`` to rewrite
``sicily_statsmodels.json``; tests/analysis/its/test_segmented_regression.py checks that the JSON
still equals what this script computes, and that careloop matches both.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "data" / "its_sicily" / "sicily.csv"
OUT = HERE / "sicily_statsmodels.json"

Z = stats.norm.ppf(0.975)


def load() -> pd.DataFrame:
    d = pd.read_csv(DATA)
    for k in (1, 2):
        d[f"cos{k}"] = np.cos(2 * np.pi * k * d["month"] / 12)
        d[f"sin{k}"] = np.sin(2 * np.pi * k * d["month"] / 12)
    d["rate"] = d["aces"] / d["stdpop"] * 1e5
    d["phase2"] = (d["time"] >= 49).astype(int)
    d["trials"] = np.round(d["pop"] / 100)
    d["slope1"] = (d["time"] - 36) * d["smokban"]
    d["slope2"] = (d["time"] - 48) * d["phase2"]
    return d


def effects(res: Any, ratio: bool = True) -> dict[str, list[float]]:
    out = {}
    for name in res.params.index:
        b = float(res.params[name])
        se = float(res.bse[name])
        lo, hi = b - Z * se, b + Z * se
        p = float(2 * stats.norm.sf(abs(b / se)))
        if ratio:
            b, lo, hi = math.exp(b), math.exp(lo), math.exp(hi)
        out[name] = [b, lo, hi, p]
    return out


def compute() -> dict[str, Any]:
    d = load()
    off = np.log(d["stdpop"])
    pois = sm.families.Poisson()
    season = " + cos1 + cos2 + sin1 + sin2"
    ref: dict[str, Any] = {}

    m1 = smf.glm("aces ~ smokban + time", d, offset=off, family=pois).fit()
    ref["model1_poisson"] = effects(m1)
    ref["model1_poisson"]["pearson_dispersion"] = float(m1.pearson_chi2 / m1.df_resid)

    m2 = smf.glm("aces ~ smokban + time", d, offset=off, family=pois).fit(scale="X2")
    ref["model2_quasipoisson"] = effects(m2)
    ref["model2_quasipoisson"]["dispersion"] = float(m2.scale)

    m3 = smf.glm("aces ~ smokban + time" + season, d, offset=off, family=pois).fit(scale="X2")
    ref["model3_seasonal"] = effects(m3)
    ref["model3_seasonal"]["dispersion"] = float(m3.scale)
    fitted3 = np.asarray(m3.predict(d, offset=np.zeros(len(d))))
    cf = d.assign(smokban=0)
    counterfactual3 = np.asarray(m3.predict(cf, offset=np.zeros(len(d))))
    ref["model3_seasonal"]["fitted_rate"] = fitted3.tolist()
    ref["model3_seasonal"]["counterfactual_rate"] = counterfactual3.tolist()

    m4 = smf.glm("aces ~ smokban + time + slope1" + season, d, offset=off, family=pois).fit(
        scale="X2"
    )
    ref["model4_slope"] = effects(m4)

    for name, formula in (
        ("model1_neweywest3", "aces ~ smokban + time"),
        ("model3_neweywest3", "aces ~ smokban + time" + season),
    ):
        nw = smf.glm(formula, d, offset=off, family=pois).fit(
            cov_type="HAC", cov_kwds={"maxlags": 3}
        )
        ref[name] = effects(nw)

    g = smf.glm("rate ~ smokban + time", d, family=sm.families.Gaussian()).fit()
    ref["gaussian"] = effects(g, ratio=False)
    ref["gaussian"]["dispersion"] = float(g.scale)

    ph = smf.glm(
        "aces ~ smokban + phase2 + time + slope1 + slope2", d, offset=off, family=pois
    ).fit()
    ref["phases"] = effects(ph)

    endog = np.column_stack([d["aces"], d["trials"] - d["aces"]])
    exog = sm.add_constant(d[["smokban", "time", "cos1", "cos2", "sin1", "sin2"]].astype(float))
    b = sm.GLM(endog, exog, family=sm.families.Binomial()).fit()
    ref["binomial"] = effects(b)
    return ref


def main() -> None:
    OUT.write_text(json.dumps(compute(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
