"""benchmarks/revision.py imports bpjax of another git revision beside this tree's, and env_throughput.py's
--before option times both envs in paired rounds (no speed is asserted)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def benchmarks(monkeypatch):
    """benchmarks/ importable (its scripts import each other by file name), in a git checkout."""
    if subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD"], cwd=REPO, capture_output=True).returncode:
        pytest.skip("not a git checkout")
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import env_throughput
    import revision
    return revision, env_throughput


def test_a_revision_imports_beside_this_tree(benchmarks):
    revision, _ = benchmarks
    import bpjax.env.kitchen as kitchen_now

    kitchen = revision.import_at("HEAD", "bpjax.env.kitchen")
    assert kitchen.__name__ == revision.package_at("HEAD") + ".env.kitchen" != kitchen_now.__name__
    assert kitchen.Kitchen is not kitchen_now.Kitchen
    # its own modules import each other, not this tree's
    assert kitchen.KitchenSpec is revision.import_at("HEAD", "bpjax.env.config").KitchenSpec
    assert kitchen.KitchenSpec is not kitchen_now.KitchenSpec
    with pytest.raises(ValueError, match="not found"):
        revision.commit_of("no-such-revision")


def test_paired_rounds_time_this_tree_and_a_revision(benchmarks):
    revision, env_throughput = benchmarks
    from bpjax.env import config, kitchen
    from tests.conftest import spec_for

    spec = spec_for().to_dict()
    versions = [env_throughput.env_version("after", kitchen, config, spec),
                env_throughput.env_version("before", revision.import_at("HEAD", "bpjax.env.kitchen"),
                                           revision.import_at("HEAD", "bpjax.env.config"), spec)]
    times = env_throughput.time_rounds(versions, batch=4, n_steps=2, with_obs=True, rng="xorshift", rounds=3,
                                       devices=1)
    assert sorted(times) == ["after", "before"]
    assert all(len(t) == 3 and min(t) > 0 for t in times.values())
