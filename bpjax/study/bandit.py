"""Dynamic tips: which tip to show a trainee next, given what its rounds so far show.

One Bayesian bandit per trainee (Thompson sampling). Each candidate tip is an arm whose unknown value is its
gain for this trainee, in ticks per round, with a normal prior: mean = its simulated gain, variance from the
simulation's interval. The interval's width is inflated by `prior_inflation`, because the simulation rests on
a model fitted to few decisions. After a round with tip ρ, the observed gain is the ticks the trainee was
expected to take without a tip (its own simulated control) minus the ticks it took. This updates ρ's
posterior, with the round-to-round noise of its control rounds as the observation variance.

* **Choose**: draw a value for every active arm from its posterior and show the arm with the best draw, or no
  tip when the best draw is not positive (or no arm is active).
* **Active arms**: the tips the trainee's latest mining recommends — their simulated gain, with the trainee's
  current habit model following them, has its interval above zero (before any mining: the population's tips).
  An arm whose tip is no longer recommended rests (the habit it corrects has faded from the trainee's model,
  or it never fitted them) and comes back if a later mining recommends it again. A tip the trainee follows
  is *not* retired for being followed: following hides a habit only at the ticks where it is followed, and
  while the trainee's decisions still show the habit, the tip stays a candidate and keeps being shown when
  its draw is best.
* **Re-mine**: newly recommended tips join as arms. Arms the bandit already has keep their posterior.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpjax.tips.candidates import Tip


@dataclass
class Arm:
    tip: Tip
    mean: float
    var: float
    active: bool = True
    shown: int = 0


@dataclass
class TipBandit:
    prior_inflation: float = 2.0
    arms: dict[Tip, Arm] = field(default_factory=dict)

    def offer(self, tip: Tip, gain: float, ci: tuple[float, float], z: float = 1.96) -> None:
        """Add a candidate with its simulated gain and interval (kept as it is if the bandit has it)."""
        if tip not in self.arms:
            sd = max((ci[1] - ci[0]) / (2 * z), 0.1) * self.prior_inflation
            self.arms[tip] = Arm(tip, gain, sd * sd)

    def keep_active(self, tips: set[Tip]) -> None:
        """The arms of `tips` are active, every other arm rests (a mining's recommended tips)."""
        for tip, arm in self.arms.items():
            arm.active = tip in tips

    def choose(self, rng: np.random.Generator) -> Tip | None:
        active = [arm for arm in self.arms.values() if arm.active]
        if not active:
            return None
        draws = [rng.normal(arm.mean, np.sqrt(arm.var)) for arm in active]
        best = int(np.argmax(draws))
        return active[best].tip if draws[best] > 0 else None

    def observe(self, tip: Tip, gain: float, noise_var: float) -> None:
        arm = self.arms[tip]
        precision = 1.0 / arm.var + 1.0 / max(noise_var, 1e-6)
        arm.mean = (arm.mean / arm.var + gain / max(noise_var, 1e-6)) / precision
        arm.var = 1.0 / precision
        arm.shown += 1
