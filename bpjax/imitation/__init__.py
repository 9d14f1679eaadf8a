"""Learning the trainee's policy π^h from traces: scikit-learn forests, behaviour cloning and GAIL, behind one
interface (`fit(obs, mask, action) -> self`, `probs(obs, mask) -> action distribution`)."""

from bpjax.imitation.methods import METHODS, make_policy
from bpjax.imitation.policies import BehaviourCloning, ForestPolicy, TraineePolicy

__all__ = ["METHODS", "BehaviourCloning", "ForestPolicy", "TraineePolicy", "make_policy"]
