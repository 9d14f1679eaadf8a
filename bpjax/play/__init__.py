"""The kitchen as a web game: people play it in a browser, their decisions become traces, a tip can be shown.

``python -m bpjax.play`` serves it (see :mod:`bpjax.play.cli`); :mod:`bpjax.play.game` holds a participant's
game on the reference simulator, :mod:`bpjax.play.server` the web app, :mod:`bpjax.play.guard` what a
request must show first (``docs/security.md``).
"""

from bpjax.play.game import GameSetup, Participant, PlayError
from bpjax.play.guard import Guard
from bpjax.play.server import create_app

__all__ = ["GameSetup", "Guard", "Participant", "PlayError", "create_app"]
