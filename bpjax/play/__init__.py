"""The kitchen as a web game: people play it in a browser, their decisions become traces, a tip can be shown.

``python -m bpjax.play`` serves it (see :mod:`bpjax.play.cli`); :mod:`bpjax.play.game` holds a participant's
game on the reference simulator, :mod:`bpjax.play.server` the web app, :mod:`bpjax.play.guard` what a
request must show first (``docs/security.md``). The names below are imported on first use, so that
``--help`` does not load the game and the web server.
"""

import importlib

__all__ = ["GameSetup", "Guard", "Participant", "PlayError", "create_app"]
_LAZY = {"GameSetup": "game", "Participant": "game", "PlayError": "game", "Guard": "guard", "create_app": "server"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"bpjax.play.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'bpjax.play' has no attribute {name!r}")
