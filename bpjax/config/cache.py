"""bpjax's cache folder: JAX's persistent compilation cache and small memoised results (a kitchen's exact
optimum), so a repeated command compiles and solves nothing it did before.

- folder: ``$BPJAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/bpjax``, else ``~/.cache/bpjax``;
- compiled programs in ``<folder>/jax``; ``BPJAX_COMPILATION_CACHE=0`` turns that off, and a
  ``JAX_COMPILATION_CACHE_DIR`` set by the caller (the test suite sets its own) is used as it is;
- memoised results in ``<folder>/memo``; delete the folder at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

OFF = ("0", "false", "off", "no")


def cache_dir() -> Path:
    if os.environ.get("BPJAX_CACHE_DIR"):
        return Path(os.environ["BPJAX_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "bpjax"


def enable_compilation_cache() -> str | None:
    """Point JAX's persistent compilation cache at the cache folder (programs of any compile time) and
    return the folder in use; None when turned off. Call it before the first compilation."""
    if os.environ.get("BPJAX_COMPILATION_CACHE", "1").strip().lower() in OFF:
        return None
    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(cache_dir() / "jax")
    min_compile_s = os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    if "jax" in sys.modules:  # JAX reads its environment at import: update its config instead
        import jax

        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_s))
    else:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
        os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = min_compile_s
    return folder


def _memo_path(kind: str, key: Any) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return cache_dir() / "memo" / kind / f"{digest}.json"


def memo_get(kind: str, key: Any) -> Any | None:
    """The value memoised for (`kind`, `key`), or None (never stored, unreadable, or another key)."""
    try:
        entry = json.loads(_memo_path(kind, key).read_text())
    except (OSError, ValueError):
        return None
    return entry.get("value") if entry.get("key") == json.loads(json.dumps(key, default=str)) else None


def memo_put(kind: str, key: Any, value: Any) -> None:
    """Memoise `value` (JSON) for (`kind`, `key`): written to a temporary file and renamed into place, so a
    reader never sees half a file; a read-only or full disk only loses the memo."""
    path = _memo_path(kind, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
            json.dump({"key": key, "value": value}, f, default=str)
        os.replace(f.name, path)
    except OSError:
        pass
