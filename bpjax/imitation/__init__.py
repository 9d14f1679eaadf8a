"""Learning the trainee's policy π^h from traces: scikit-learn forests, behaviour cloning and GAIL, behind one
interface (`fit(obs, mask, action) -> self`, `probs(obs, mask) -> action distribution`).

The names below are imported (with JAX and scikit-learn) on first use: ``python -m bpjax.imitation --help``
does not need them.
"""

import importlib

__all__ = ["METHODS", "BehaviourCloning", "ForestPolicy", "TraineePolicy", "make_policy"]
_LAZY = {"METHODS": "methods", "make_policy": "methods", "BehaviourCloning": "policies", "ForestPolicy": "policies",
         "TraineePolicy": "policies"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"bpjax.imitation.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'bpjax.imitation' has no attribute {name!r}")
