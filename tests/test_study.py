"""The simulated experiment end to end: study.json per arm and round with intervals, arms paired, each
arm's rule for which tip a trainee sees."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import assert_tables_well_formed

REPO = Path(__file__).resolve().parents[1]
SMALL = ["trainees=6", "pilot_players=8", "pilot_rounds=2",
         "blocks=[{dish:burger,rounds:2,orders:[burger,burger]},{dish:pasta,rounds:1,orders:[pasta]}]"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    result = subprocess.run([sys.executable, "-m", "bpjax.study", f"hydra.run.dir={out}", *SMALL],
                            capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "study.json").read_text()), result, out


@pytest.mark.slow
def test_study_json_has_every_arm_and_round_with_intervals(study):
    payload, result, out = study
    assert list(payload["arms"]) == ["control", "static", "personalised", "dynamic"]
    for arm, data in payload["arms"].items():
        rounds = data["by_round"]
        assert [(r["round"], r["dish"]) for r in rounds] == [(1, "burger"), (2, "burger"), (3, "pasta")]
        for r in rounds:
            assert r["ticks_ci"][0] <= r["ticks"] <= r["ticks_ci"][1]
            assert r["suboptimal_ci"][0] <= r["suboptimal_rate"] <= r["suboptimal_ci"][1]
            assert 0 <= r["tip_shown"] <= 1
    assert all(r["tip_shown"] == 0 for r in payload["arms"]["control"]["by_round"])
    assert all(r["tip_shown"] == 1 for r in payload["arms"]["static"]["by_round"])  # the pilot found a tip
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last["arms"]) == set(payload["arms"])
    report = (out / "report.md").read_text()  # suboptimal decisions, paired differences, ticks: a row per round each
    assert report.count("| 3 | pasta |") == 3 and "## Paired differences" in report
    assert assert_tables_well_formed(report) >= 4
    assert (out / "study_ticks.png").is_file()
    assert set(payload["paired"]) == {"personalised - static", "dynamic - static"} == set(last["paired"])
    for rows in payload["paired"].values():
        assert [r["round"] for r in rows] == [1, 2, 3]
        assert all(r["suboptimal_ci"][0] <= r["suboptimal_rate"] <= r["suboptimal_ci"][1] for r in rows)
    kinds = {t["kind"] for t in payload["trainees"]}
    assert all(set(r["by_kind"]) == kinds for data in payload["arms"].values() for r in data["by_round"])


@pytest.mark.slow
def test_arms_are_paired(study):
    """Before any trainee's own decisions exist, the personalised arm shows the population's tip, as the static
    arm does; the same trainees with the same random streams then play the same round."""
    payload, _, _ = study
    static, personal = payload["arms"]["static"]["by_round"][0], payload["arms"]["personalised"]["by_round"][0]
    assert static["tips"] == personal["tips"]
    assert static["ticks"] == personal["ticks"] and static["suboptimal_rate"] == personal["suboptimal_rate"]
    first = payload["paired"]["personalised - static"][0]   # so their paired difference is exactly zero
    assert first["suboptimal_rate"] == 0 and first["ticks"] == 0


def test_a_bad_block_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bpjax.study", f"hydra.run.dir={tmp_path}",
                             "blocks=[{dish:burger,rounds:1,orders:[pizza]}]"],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == ("ConfigError: blocks[0].orders[0].dish: unknown dish 'pizza' "
                                                      "(known: burger, pasta, tacos)")


def test_the_study_config_and_schema_default_to_the_code_settings():
    """conf/study.yaml, its typed schema and StudySettings agree on every setting they share."""
    import dataclasses

    from bpjax.config import compose_config
    from bpjax.config.schema import primary_schemas
    from bpjax.study.experiment import StudySettings

    def default(field):
        value = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        return list(value) if isinstance(value, tuple) else value

    composed = compose_config([], "study")
    schema = {f.name: default(f) for f in dataclasses.fields(primary_schemas()["StudySchema"])}
    # the settings of both (StudySettings.population is the tip stage's settings, the config's the players)
    shared = [f for f in dataclasses.fields(StudySettings) if f.name in schema and f.name != "population"]
    assert len(shared) >= 8
    for setting in shared:
        configured = composed[setting.name]
        configured = list(configured) if setting.name == "arms" else configured
        assert configured == schema[setting.name] == default(setting), setting.name
