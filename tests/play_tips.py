"""What the game's personalised and dynamic tips rest on, for the play tests: the game's default study kitchen,
a population's traces in it (the study population, generated), a tips.json recommending two tips for it, and
a scripted participant with one costly habit who otherwise plays optimally."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from bpjax.config import compose_config
from bpjax.data.players import generate_population
from bpjax.data.traces import write_traces
from bpjax.env.config import KitchenSpec
from bpjax.env.joint import action_pair
from bpjax.env.reference import ReferenceKitchen
from bpjax.tips.candidates import Tip

# the population's tips, as a pipeline would recommend them: (worker, task type, times, gain, interval)
POPULATION_TIPS = [("chef", "plate", 0, 4.9, [1.6, 8.2]), ("chef", "plate", 1, 2.4, [0.2, 4.5])]


def study_kitchen() -> KitchenSpec:
    """The game's default study kitchen (the paper's: four burgers, chef / sous-chef / server)."""
    return KitchenSpec.from_dict(OmegaConf.to_container(compose_config([], "play").kitchen, resolve=True))


def write_inputs(folder: Path, players: int = 16, rounds: int = 2) -> tuple[Path, Path]:
    """(tips.json, the population's traces) in `folder`."""
    spec = study_kitchen()
    workers = [w.name for w in spec.workers]
    recommended = []
    for rank, (worker, task_type, times, gain, ci) in enumerate(POPULATION_TIPS, 1):
        tip = Tip("count", "times", workers.index(worker), spec.task_types.index(task_type), times)
        recommended.append({"rank": rank, "text": tip.text(spec), "kind": "count", "advice": "times",
                            "worker": worker, "task_type": task_type, "times": times, "condition": None,
                            "simulated_gain": gain, "simulated_gain_ci": ci})
    tips = folder / "tips.json"
    tips.write_text(json.dumps({"recommended": recommended}, indent=1))
    population = OmegaConf.to_container(compose_config([], "traces").population)
    frame, _ = generate_population(spec, population, players, rounds, seed=0)
    return tips, write_traces(frame, folder / "population.csv")


def habitual_round(spec: KitchenSpec, optimum, worker: str, task_type: str) -> list[tuple[int, int, int]]:
    """A round by a person who gives `worker` a `task_type` subtask whenever it can and otherwise plays the
    optimum's best action: (tick, worker index or -1, slot or -1) per decision, "end of tick" as (-1, -1)."""
    ref = ReferenceKitchen(spec.to_dict())
    names = [w.name for w in spec.workers]
    state, decisions = ref.reset(), []
    while True:
        legal = ref.legal_actions(state)
        habit = [a for a in legal if a != ref.end_tick_action
                 and names[action_pair(a, ref.n_workers, ref.n_slots)[0]] == worker
                 and spec.task_types[ref.slot_type[action_pair(a, ref.n_workers, ref.n_slots)[1]]] == task_type]
        q = optimum.state_q(state)
        action = habit[0] if habit else int(max(legal, key=lambda a: q[a]))
        w, slot = action_pair(action, ref.n_workers, ref.n_slots) if action != ref.end_tick_action else (-1, -1)
        decisions.append((state.tick, w, slot))
        state, _, terminated, truncated, _ = ref.step(state, action)
        if terminated or truncated:
            return decisions
