"""Tips: "if [state], then [action]" rules mined from the gap between the trainees and the optimal policy,
scored per decision tick and checked by simulation before anyone sees them (``bpjax.tips.recommend``)."""

from bpjax.tips.candidates import Clause, Tip
from bpjax.tips.recommend import TipReport, TipSettings, mine_tips

__all__ = ["Clause", "Tip", "TipReport", "TipSettings", "mine_tips"]
