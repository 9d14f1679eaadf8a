"""Every numeric setting of every command line's schema, set to 0, -1 and a huge value: refused before any work
with one line naming the key (exit 2, no traceback, no output folder), or accepted where that value is
legitimate. In-process through the very check the command lines run (compose, then `settings_of` with the
command's own `validate`), and a few cases through real processes."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import bpjax.data.__main__ as data_cli
import bpjax.imitation.__main__ as imitation_cli
import bpjax.play.cli as play_cli
import bpjax.solve.__main__ as solve_cli
import bpjax.study.__main__ as study_cli
import bpjax.pipeline as pipeline_cli
import bpjax.train.__main__ as train_cli
from bpjax.config import compose_config
from bpjax.config.cli import BadSettings, one_line, settings_of

REPO = Path(__file__).resolve().parents[1]
HUGE = 10**12
VALUES = (0, -1, HUGE)

# (command, config, overrides selecting the schemas walked, the command's validation)
COMMANDS = [("solve", "config", [], solve_cli.validate), ("train", "train", [], train_cli.validate),
            ("train", "train", ["algo=reinforce"], train_cli.validate),
            ("data generate", "traces", [], data_cli.validate), ("play", "play", [], play_cli.validate),
            *[("imitation", "imitate", [f"algo={learner}"], imitation_cli.validate)
              for learner in ("forest", "boosting", "bc", "gail")],
            ("pipeline", "pipeline", [], pipeline_cli.validate)]

# settings for which 0 is a legitimate value (seeds, "none", "off", probabilities, coefficients)
ZERO_ALLOWED = {"seed", "skills_seed", "arrival", "handoff", "solver_max_states", "max_requeues", "practice_rounds",
                "port", "gamma", "gae_lambda", "entropy_coef", "value_coef", "flaw_rate", "epsilon", "skill",
                "learning", "bc_epochs", "bc_coef", "grad_penalty", "slip_decay", "flaw_decay", "compliance",
                "compliance_step", "tip_learning", "min_support", "max_disagreement", "shrinkage", "tolerance",
                "max_times", "max_predicates", "cpu_devices"}
HUGE_ALLOWED = {"share"}  # a population share is relative: any positive weight
def owner(path: str, overrides: list[str]) -> str | None:
    """The dataclass that owns an `algo.*` setting (None for the command lines' own settings)."""
    if not path.startswith("algo."):
        return None
    if path.startswith("algo.ppo."):
        return "PPOConfig"
    learner = overrides[0].split("=")[1] if overrides else "ppo"
    return {"ppo": "PPOConfig", "reinforce": "ReinforceConfig", "forest": "ForestPolicy",
            "boosting": "ForestPolicy", "bc": "BehaviourCloning", "gail": "GAILPolicy"}[learner]


def numeric_settings(cfg) -> list[tuple[str, type]]:
    """(dotted path, type) of every numeric setting; one element stands for a list of same-schema entries
    (orders, population, a network's layers) and one worker for the skill matrix."""
    out: list[tuple[str, type]] = []

    def walk(node, path):
        if isinstance(node, dict):
            items = list(node.items())[:1] if path.endswith("skills") else node.items()
            for key, value in items:
                walk(value, f"{path}.{key}" if path else key)
        elif isinstance(node, list):
            if node:
                walk(node[0], f"{path}.0")
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            out.append((path, type(node)))

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return [(p, t) for p, t in out if not p.startswith("practice_kitchen.")]  # the kitchen schema, again


def all_cases():
    """(command, config, overrides, validate, path, value, setting name, owner) of every case walked."""
    for command, config, overrides, validate in COMMANDS:
        for path, kind in numeric_settings(composed(config, overrides)):
            if path.startswith(("kitchen.", "cluster.", "population.")) and overrides not in ([], ["algo=forest"]):
                continue  # the same schemas, walked with the command's default algorithm already
            name = path.split(".")[-2] if path.split(".")[-1].isdigit() else path.split(".")[-1]
            for value in VALUES:
                yield command, config, overrides, validate, path, kind(value), name, owner(path, overrides)


_BASES: dict = {}


def composed(config: str, overrides: list[str]):
    key = (config, tuple(overrides))
    if key not in _BASES:
        _BASES[key] = compose_config(overrides, config_name=config)
    return copy.deepcopy(_BASES[key])


def check(case) -> None:
    """The case's value is refused in one line naming the setting, or accepted where it is legitimate."""
    command, config, overrides, validate, path, value, name, _ = case
    cfg = composed(config, overrides)
    allowed = (value == 0 and name in ZERO_ALLOWED) or (value == HUGE and name in HUGE_ALLOWED)
    try:
        OmegaConf.update(cfg, path, value, merge=False)
        settings_of(cfg, validate)
    except BadSettings as error:
        message = str(error)
        assert not allowed, f"{path}={value} is legitimate but was refused: {message}"
        assert "\n" not in message and message.startswith(("ConfigError: ", "ValueError: ")), message
        assert name in message, f"the message does not name {name}: {message}"
    else:
        assert allowed, f"{command}: {path}={value} was accepted"


CASES = list(all_cases())


@pytest.mark.parametrize("case", CASES,
                         ids=lambda c: f"{c[0]}{'[' + c[2][0] + ']' if c[2] else ''}:{c[4]}={c[5]}")
def test_every_numeric_setting_at_zero_minus_one_and_huge(case):
    check(case)


@pytest.mark.parametrize("config, override, validate, key", [
    ("study", "blocks=[{dish:burger,rounds:1,orders:[burger]},{rounds:2,orders:[pasta]}]", study_cli.validate,
     "blocks[1].dish"),
    ("train", "kitchen.orders=[{dish:burger},{arrival:1}]", train_cli.validate, "kitchen.orders[1].dish"),
])
def test_a_list_entry_without_a_required_key_is_refused(config, override, validate, key):
    """A required key left out of one entry of a list of settings (``???`` once composed) is named, with the
    entry's index, instead of running with the placeholder."""
    cfg = compose_config([override], config_name=config)
    with pytest.raises(BadSettings) as refused:
        settings_of(cfg, validate)
    assert str(refused.value) == f"ConfigError: {key}: Missing mandatory value"


@pytest.mark.parametrize("config, override, says", [
    ("study", "blocks=[{dish:burger,rounds:1,orders:[burger]},{dish:pasta,roundz:3,orders:[pasta]}]",
     "blocks[1].roundz: Key 'roundz' not in 'BlockSchema'"),
    ("study", "blocks=[{dish:burger,rounds:x,orders:[burger]}]",
     "blocks[0].rounds: Value 'x' of type 'str' could not be converted to Integer"),
    ("train", "kitchen.orders=[{dish:burger},{dsh:pasta}]", "kitchen.orders[1].dsh: Key 'dsh' not in 'OrderSchema'"),
    ("train", "kitchen.scenario.workers=chef", "kitchen.scenario.workers: expected a list ([a, b, ...]), got a single "
                                               "value"),
    ("study", "blocks=[{dish:burger,rounds:1,orders:burger}]", "blocks[0].orders: expected a list ([a, b, ...]), got "
                                                               "a single value"),
])
def test_a_bad_entry_of_an_overridden_list_is_named_with_its_index(config, override, says):
    """OmegaConf reports such a key alone (`roundz`); the line puts the list and the entry's index in front."""
    with pytest.raises(Exception) as refused:
        compose_config([override], config_name=config)
    assert one_line(refused.value) == f"ConfigError: {says}"


@pytest.mark.parametrize("override, says", [
    ("kitchen=understaffed", "Could not override 'kitchen': did you mean kitchen/scenario=understaffed?"),
    ("scenario=understaffed", "scenario: Key 'scenario' not in 'TrainSchema' (did you mean "
                              "kitchen/scenario=understaffed?)"),
    ("orders=arrivals", "orders: Key 'orders' not in 'TrainSchema' (did you mean kitchen/orders=arrivals?)"),
    ("kitchen=nonsense", "Could not override 'kitchen'. No match in the defaults list. To append to your default "
                         "list use +kitchen=nonsense"),   # no group has that option: Hydra's words stand
    ("sceanrio=full", "sceanrio: Key 'sceanrio' not in 'TrainSchema'"),
])
def test_a_group_option_given_under_the_wrong_name_asks_about_the_group(override, says, monkeypatch):
    """`kitchen=understaffed` is a scenario: the line asks about kitchen/scenario, not Hydra's `+kitchen=`."""
    monkeypatch.setattr(sys, "argv", ["train", override])   # the value of an unknown key comes from the line
    with pytest.raises(Exception) as refused:
        compose_config([override], config_name="train")
    assert one_line(refused.value) == f"ConfigError: {says}"


def test_a_study_block_is_labelled_by_a_dish_it_serves():
    cfg = compose_config(["blocks=[{dish:burger,rounds:1,orders:[burger]},{dish:pizza,rounds:1,orders:[pasta]}]"],
                         config_name="study")
    with pytest.raises(BadSettings) as refused:
        settings_of(cfg, study_cli.validate)
    assert str(refused.value) == "ConfigError: blocks[1].dish: 'pizza' is not among the block's orders (pasta)"


@pytest.mark.parametrize("config, validate, says", [
    ("traces", data_cli.validate, "population[1] (chef_plates): flaw ['chef', 'plate'] dropped"),
    ("imitate", imitation_cli.validate, "population[1] (chef_plates): flaw ['chef', 'plate'] dropped"),
    ("study", study_cli.validate, "blocks[0]: population[0] (chef_plates): flaw ['chef', 'plate'] dropped"),
])
def test_every_generating_command_says_which_flaws_the_kitchen_drops(config, validate, says):
    """Without its chef a kitchen cannot have a chef who plates: each command's settings carry the note it
    prints before the work (the pipeline's own test covers it there)."""
    notes = settings_of(compose_config(["kitchen/scenario=understaffed"], config_name=config), validate).notes
    assert any(note.startswith(says) for note in notes), notes


FLOAT_SETTINGS = {(c[0], c[1], tuple(c[2]), c[4]): c for c in CASES if c[5] == 0 and isinstance(c[5], float)}


@pytest.mark.parametrize("key", sorted(FLOAT_SETTINGS), ids=lambda k: f"{k[0]}{list(k[2]) or ''}:{k[3]}")
def test_every_float_setting_refuses_nan(key):
    """NaN passes every comparison, so a range check must ask for it: it is refused naming the setting."""
    command, config, overrides, validate, path, _, name, _ = FLOAT_SETTINGS[key]
    cfg = composed(config, overrides)
    OmegaConf.update(cfg, path, float("nan"), merge=False)
    with pytest.raises(BadSettings, match=rf"^(ConfigError|ValueError): .*{name}"):
        settings_of(cfg, validate)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.mark.slow
@pytest.mark.parametrize("args, key", [
    (["bpjax.train", "n_seeds=0"], "n_seeds"),
    (["bpjax.solve", "kitchen.max_ticks=1000000000"], "kitchen.max_ticks"),
    (["bpjax.data", "generate", "rounds=-1"], "rounds"),
    (["bpjax.imitation", "held_out=0"], "held_out"),
    (["bpjax.play", "practice_rounds=-1"], "practice_rounds"),
], ids=lambda x: x if isinstance(x, str) else " ".join(x))
def test_a_bad_setting_through_the_command_line(tmp_path, args, key):
    """A real process: one line on stderr naming the key, exit status 2, nothing on stdout, and the output
    folder Hydra made for the run is gone again."""
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", *args, f"hydra.run.dir={out}"], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"ConfigError: {key}: "), result.stderr
    assert result.stdout == "" and not out.exists()
