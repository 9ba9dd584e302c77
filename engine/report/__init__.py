"""Reports people can read: one self-contained HTML file and publication charts.

    import engine.report
    report = engine.report.build("china-city-innovation-2023", uncertainty=mc)  # Report
    report.write("report.html")                       # one file, everything inline, works offline
    engine.report.write_figures(report, "figures/")   # every chart as PNG and SVG (no browser)
    engine.report.charts.rank_intervals(mc, result)    # any chart as an Altair object (Jupyter)

Charts are Vega-Lite through Altair; see docs/report.md.
"""

from . import charts
from .build import Report, build, check_path, default_study_fits, load_audit, load_folder, write_figures

__all__ = ["Report", "build", "charts", "check_path", "default_study_fits", "load_audit", "load_folder",
           "write_figures"]
