"""What a command line's overrides mean once a trace file is given (or not): with traces the kitchen and the
players are the traces', so a kitchen override that describes another kitchen is an error and the generator's
other settings go unused; without traces the settings for reading traces go unused. The unused ones come back
as notes, said before the work, never silently dropped."""

from __future__ import annotations

from typing import Any

# what the traces decide when they are given: the generator's settings
FROM_TRACES = ("kitchen", "skills_seed", "population", "n_players", "rounds", "strict_population")


def given(names: tuple[str, ...]) -> list[str]:
    """The command line's overrides of these settings, as typed (`population=experts`, `+kitchen.x=1`)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():  # validated in-process (tests, scripts): no command line to read
        return []
    return [o for o in HydraConfig.get().overrides.task
            if o.lstrip("+~").split("=", 1)[0].split("/", 1)[0].split(".", 1)[0] in names]


def check_with_traces(cfg: Any, spec: Any) -> list[str]:
    """With traces: a kitchen override that contradicts the traces' kitchen raises ConfigError; the returned
    note names the generator's settings given but not used."""
    from bpjax.env.config import ConfigError, KitchenSpec

    overrides = given(FROM_TRACES)
    kitchen = [o for o in overrides if o.lstrip("+~").startswith(("kitchen", "skills_seed"))]
    if kitchen and KitchenSpec.from_dict(cfg.kitchen) != spec:
        raise ConfigError(f"traces: their kitchen is not the one {' '.join(kitchen)} describes; the traces' own "
                          f"kitchen is used, so drop the kitchen settings")
    unused = [o for o in overrides if o not in kitchen]
    return ([f"traces={cfg.traces}: the players and rounds are the traces'; not used: {' '.join(unused)}"]
            if unused else [])


def check_without_traces(for_traces: tuple[str, ...]) -> list[str]:
    """Without traces: a note naming the settings for reading traces (`for_traces`) given but not used."""
    unused = given(for_traces)
    return ([f"without traces the rounds are generated (valid by construction); not used: {' '.join(unused)}"]
            if unused else [])
