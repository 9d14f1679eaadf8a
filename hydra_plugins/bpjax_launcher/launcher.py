"""Submitit launchers (SLURM and local) whose requeued jobs resume from their own Orbax checkpoint.

How the stock launcher requeues: submitit traps the preemption / near-timeout signal (USR2) in the job,
calls the pickled callable's ``checkpoint(*args)`` — the launcher's, which returns the same call with the
same arguments (the job's sweep overrides) — pickles that and requeues the job, which then re-runs the same
sweep overrides in the same output directory (``hydra.sweep.dir/<job num>``, resolved once at launch).
The one thing missing for training is ``resume=true``: these launchers add it to the requeued job's
overrides, so it continues from the last checkpoint in its own directory instead of starting over.
"""

from __future__ import annotations

from typing import Any, Sequence

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher

RESUME_OVERRIDE = "resume=true"


def resume_overrides(sweep_overrides: Sequence[str]) -> list[str]:
    """The job's overrides with any `resume=` setting replaced by `resume=true`."""
    return [o for o in sweep_overrides if not o.lstrip("+~").startswith("resume=")] + [RESUME_OVERRIDE]


class _ResumingMixin:
    def checkpoint(self, sweep_overrides: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        """Called by submitit in the job on preemption / timeout: requeue the same job, resuming."""
        if self.config is not None and "resume" in self.config:
            sweep_overrides = resume_overrides(sweep_overrides)
        return super().checkpoint(list(sweep_overrides), *args, **kwargs)


class ResumingSlurmLauncher(_ResumingMixin, SlurmLauncher):
    pass


class ResumingLocalLauncher(_ResumingMixin, LocalLauncher):
    pass
