"""Learning the trainee's policy π^h from traces: scikit-learn forests and behaviour cloning, behind one
interface (`fit(traces) -> self`, `probs(obs, mask) -> action distribution`)."""

from bpjax.imitation.policies import BehaviourCloning, ForestPolicy, TraineePolicy, make_policy

__all__ = ["BehaviourCloning", "ForestPolicy", "TraineePolicy", "make_policy"]
