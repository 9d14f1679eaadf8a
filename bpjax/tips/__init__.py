"""Tips: "if [state], then [action]" rules mined from the gap between the trainee and the optimal policy."""

from bpjax.tips.study import Tip, TipScores, decision_table, score_count_tips

__all__ = ["Tip", "TipScores", "decision_table", "score_count_tips"]
