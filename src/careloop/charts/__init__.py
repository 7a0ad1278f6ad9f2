"""Drawing analysis results: Plotly figures, and Vega-Lite rendered to SVG and PNG.

Beside :mod:`careloop.analysis` as ``statsmodels.graphics`` sits beside
statsmodels: analysis computes frozen results and never draws (nor imports
this package); each module here draws one family of results, with one
calling convention::

    from careloop import charts

    charts.spc.figure(chart, annotations=notes)     # interactive Plotly figure
    charts.spc.svg(chart, "chart.svg")              # no browser needed
    charts.spc.png(chart, "chart.png", scale=2)
    charts.spc.vegalite(chart)                      # the specification behind svg/png

:mod:`careloop.charts.mdc_icons` is not a family of charts: it draws the NHS
Making Data Count variation and assurance icons as small inline SVGs.
"""

from careloop.charts import funnel, its, matching, rdd, risk, spc

__all__ = ["funnel", "its", "matching", "rdd", "risk", "spc"]
