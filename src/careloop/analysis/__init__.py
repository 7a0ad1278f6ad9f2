"""Turning data into knowledge: pure statistical functions.

Data frames in, documented frozen result objects out. Nothing here touches a
database, the web or the CLI, and nothing draws: :mod:`careloop.charts` draws
these results (import-linter contracts check both).

One package or module per family of methods, imported where used (so that a
chart does not load scikit-learn):

- :mod:`~careloop.analysis.spc` — run and control charts (qicharts2's ``qic``);
- :mod:`~careloop.analysis.its` — interrupted time series (segmented regression);
- :mod:`~careloop.analysis.funnel` — funnel plots for comparing sites;
- :mod:`~careloop.analysis.trials` — rapid-cycle randomised tests;
- :mod:`~careloop.analysis.matching` — coarsened exact matching;
- :mod:`~careloop.analysis.rdd` — regression discontinuity;
- :mod:`~careloop.analysis.risk` — risk prediction with few events;
- :mod:`~careloop.analysis.qualitative` — coding and agreement of qualitative data.

Every method reports effects as an :class:`Effect` and caveats as a
:class:`StatisticalWarning`.
"""

from careloop.analysis.caveats import StatisticalWarning
from careloop.analysis.effects import Effect

__all__ = ["Effect", "StatisticalWarning"]
