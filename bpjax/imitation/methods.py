"""Every trainee-policy learner by name, for configs and command lines. It sits above both the supervised
learners (``policies``) and GAIL (``gail``, which builds on them), so imports flow one way."""

from __future__ import annotations

import numpy as np

from bpjax.imitation.gail import GAILPolicy
from bpjax.imitation.policies import BehaviourCloning, ForestPolicy, TraineePolicy

METHODS = ("forest", "boosting", "bc", "gail")


def make_policy(method: str, env, env_params, seed: int = 0, **settings) -> TraineePolicy:
    """A trainee-policy learner by name: forest | boosting | bc | gail."""
    if method in ("forest", "boosting"):
        return ForestPolicy(kind=method, seed=seed, **settings)
    if method == "bc":
        return BehaviourCloning(obs_scale=np.asarray(env.obs_scale(env_params)), seed=seed, **settings)
    if method == "gail":
        return GAILPolicy(env, env_params, seed=seed, **settings)
    raise ValueError(f"method: unknown imitation method {method!r} (known: {', '.join(METHODS)})")
