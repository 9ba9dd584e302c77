"""Panel data: editions of a ranking over time (issue 20).

:func:`load_panel` checks a panel (one table with a unit and a period column, or one file per
period) and serves each period as a dataset; :meth:`Panel.framework` gives the framework to score
each period with, normalised per period or with parameters fixed on the whole panel;
:func:`score_panel` scores every period and returns :class:`Trajectories`.

Layer: above ``engine.data``/``engine.pipeline``, below ``engine.analysis``/``engine.cli``.
"""

from .load import NORMALISATIONS, Panel, check_normalisation, load_edition, load_panel, period_years, said_by_load_panel
from .trajectories import Trajectories, score_panel

__all__ = ["NORMALISATIONS", "Panel", "Trajectories", "check_normalisation", "load_edition", "load_panel",
           "period_years", "said_by_load_panel", "score_panel"]
