"""Every trainee-policy learner by name, for configs and command lines. It sits above both the supervised
learners (``policies``) and GAIL (``gail``, which builds on them), so imports flow one way."""

from __future__ import annotations

import numpy as np

from bpjax.env.config import ConfigError
from bpjax.imitation.gail import GAILPolicy
from bpjax.imitation.policies import BehaviourCloning, ForestPolicy, TraineePolicy

METHODS = ("forest", "boosting", "bc", "gail")


def check_method(method: str, key: str = "algo") -> None:
    """ConfigError naming `key` unless `method` is a trainee-policy learner (conf/algo/ holds both kinds)."""
    if method not in METHODS:
        raise ConfigError(f"{key}: {method!r} is not a trainee-policy learner (known: {', '.join(METHODS)}; "
                          "ppo and reinforce train the optimal policy: python -m bpjax.train)")


def make_policy(method: str, env, env_params, seed: int = 0, **settings) -> TraineePolicy:
    """A trainee-policy learner by name: forest | boosting | bc | gail."""
    check_method(method, "method")
    if method in ("forest", "boosting"):
        return ForestPolicy(kind=method, seed=seed, **settings)
    if method == "bc":
        return BehaviourCloning(obs_scale=np.asarray(env.obs_scale(env_params)), seed=seed, **settings)
    return GAILPolicy(env, env_params, seed=seed, **settings)
