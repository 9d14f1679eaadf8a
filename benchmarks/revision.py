"""The `bpjax` package as it was at another git revision, importable beside this tree's (for before/after
benchmarks measured in one process).

``import_at(rev, "bpjax.env.kitchen")`` extracts ``bpjax/`` of `rev` (``git archive``) into a temporary
folder as a package named ``bpjax_at_<commit>`` and rewrites its absolute ``bpjax`` imports to that name, so
the old modules import each other and never this tree's. Only the modules asked for (and what they import)
are loaded.
"""

from __future__ import annotations

import atexit
import importlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "bpjax"
# `import bpjax...` / `from bpjax... import` at the start of a line (also inside functions: lazy imports)
_IMPORT = re.compile(rf"^(\s*)(from|import)(\s+){PACKAGE}(?=[.\s])", re.MULTILINE)
_EXTRACTED: dict[str, str] = {}  # commit -> package name


def commit_of(rev: str, repo: Path = REPO) -> str:
    """The full commit id of `rev`; ValueError with one line when git does not know it."""
    result = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=repo,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise ValueError(f"--before: git revision {rev!r} not found in {repo}")
    return result.stdout.strip()


def package_at(rev: str, repo: Path = REPO) -> str:
    """The name under which `bpjax` of revision `rev` is importable (extracted on first use)."""
    commit = commit_of(rev, repo)
    if commit in _EXTRACTED:
        return _EXTRACTED[commit]
    name = f"{PACKAGE}_at_{commit[:12]}"
    archive = subprocess.run(["git", "archive", "--format=tar", commit, PACKAGE], cwd=repo, capture_output=True,
                             check=True).stdout
    folder = Path(tempfile.mkdtemp(prefix=f"{name}_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        # the "data" filter where this Python has it (3.10.12+, 3.11.4+); the archive is this repository's own
        tar.extractall(folder, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (folder / PACKAGE).rename(folder / name)
    for path in (folder / name).rglob("*.py"):
        path.write_text(_IMPORT.sub(rf"\1\2\3{name}", path.read_text(encoding="utf-8")), encoding="utf-8")
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    _EXTRACTED[commit] = name
    return name


def import_at(rev: str, module: str, repo: Path = REPO) -> types.ModuleType:
    """Module `module` (a dotted name inside `bpjax`, e.g. ``bpjax.env.kitchen``) as it was at revision `rev`."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        raise ValueError(f"{module}: not a module of {PACKAGE}")
    return importlib.import_module(package_at(rev, repo) + module[len(PACKAGE):])
