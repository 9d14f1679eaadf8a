"""The command lines' shared machinery: one decorator turns a command's `validate` and `work` functions into
a Hydra app that

- turns on JAX's persistent compilation cache (:mod:`bpjax.config.cache`) before anything compiles;
- reports a bad setting — a wrong type or unknown key while composing, a value outside its schema range, or
  the command's own validation — as **one line** on stderr, exit status 2, no traceback, before any work,
  and leaves no output folder behind;
- prints the output folder on stderr first and last (stdout stays for results);
- gives the work a :class:`Run`: the output folder and the progress switch (``progress=false``);
- sends Python ``logging`` records (INFO and up) to the job log in the output folder (warnings also to
  stderr), through ``conf/hydra/job_logging/bpjax.yaml``;
- reports a failure the command expects (bad traces, a diverged run, ...) as one line, exit status 1, and
  Ctrl-C as one line, exit status 130 (an output folder the work wrote nothing into is removed either way).

A command::

    def validate(cfg) -> Settings: ...            # raise ConfigError / ValueError naming the key
    @command("train", validate)
    def main(cfg, settings, run: Run) -> None: ...  # the work
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bpjax.config import CONF_DIR, HYDRA_VERSION_BASE, quiet_library_logs
from bpjax.config.progress import Progress

EXIT_FAILED = 1        # the work started and failed in a way the command expects
EXIT_BAD_SETTINGS = 2  # nothing ran
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports a process ended by SIGINT
HYDRA_FILES = (".hydra",)   # what Hydra writes into an output folder before the work starts (and the log)

log = logging.getLogger("bpjax.cli")


class BadSettings(Exception):
    """A setting the command refuses before any work; the message is one line naming the key."""


@dataclass
class Run:
    """What a command's work gets from the machinery."""

    name: str
    out: Path             # the output folder (Hydra's run or job directory)
    progress: Progress    # phases and bars on stderr, off with progress=false

    def note(self, notes: list[str]) -> None:
        """Notes said before the work (settings left unused, flaws dropped): each on stderr and in the job log."""
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
            logging.getLogger(f"bpjax.{self.name.replace(' ', '.')}").info("note: %s", note)


def one_line(error: BaseException) -> str:
    """``Type: message`` on one line; OmegaConf / Hydra errors as ``key: what is wrong``."""
    from omegaconf.errors import OmegaConfBaseException

    cause = error.__cause__ if not isinstance(error, OmegaConfBaseException) else error
    if isinstance(cause, OmegaConfBaseException):
        message = str(getattr(cause, "msg", None) or cause).strip().splitlines()[0]
        key = _within_override(error, cause, getattr(cause, "full_key", None))
        message = _plain(re.sub(r"^\w+ raised while resolving interpolation: ", "", message))  # a resolver's own
        text = f"ConfigError: {key}: {message}" if key and not message.startswith(f"{key}:") \
            else f"ConfigError: {message}"
    else:
        lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
        options = getattr(error, "options", None)  # Hydra's MissingConfigException: the group's options
        if options:
            known = ", ".join(o for o in options if not o.endswith("_schema"))
            lines = [re.sub(r"^In '[\w/.-]+': (?=Could not find)", "", lines[0]), f"(known: {known})"]
        name = "ConfigError" if type(error).__module__.startswith("hydra") else type(error).__name__
        text = f"{name}: {' '.join(lines)}"
        composing = re.match(r"^In '([\w/.-]+)': \w+ raised while composing config:$", lines[0] if lines else "")
        if composing and len(lines) > 1:  # a config file whose keys or values do not fit where it is merged
            text = _composing_line(composing.group(1), lines[1], lines[2:])
    if "is not in struct" in text:  # a setting the chosen option does not have
        text += " (--cfg job lists the settings there are)"
    return _with_group_hint(text)


def group_given_settings(argv: list[str]) -> str | None:
    """`population=[{kind: a}]`: a config group given settings instead of an option's name, on which Hydra's
    defaults list fails with a bare TypeError; the line names the group and what it takes (None: no such
    override in `argv`)."""
    for override in argv:
        name, _, value = override.partition("=")
        if value[:1] in ("[", "{") and (Path(CONF_DIR) / name).is_dir():
            options = "|".join(sorted(p.stem for p in (Path(CONF_DIR) / name).glob("*.yaml")
                                      if not p.stem.endswith("_schema")))
            return (f"ConfigError: {name}: a config group takes an option's name ({name}={options}), not "
                    f"settings; set one entry's with {name}.0.<key>=..., or add your own option file with "
                    f"--config-dir")
    return None


def _with_group_hint(text: str) -> str:
    """`kitchen=understaffed` or `scenario=understaffed` where `kitchen/scenario=understaffed` was meant: the
    line asks about the config group whose option the value names (found among conf/'s files), in place of
    Hydra's advice to append a new group with +."""
    override = re.search(r"Could not override '([\w.]+)'.* use \+\1=(\w+)$", text)
    unknown = re.search(r"^ConfigError: (\w+): Key '\1' not in '\w+'$", text)
    if override:
        name, value = override.groups()
    elif unknown:
        name = unknown.group(1)
        value = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.split("=", 1)[0] == name), "")
    else:
        return text
    groups = sorted({p.parent.relative_to(CONF_DIR).as_posix() for p in Path(CONF_DIR).rglob(f"{value}.yaml")}
                    if re.fullmatch(r"\w+", value or "") else [])
    meant = [g for g in groups if name in g.split("/") and g != name]
    if not meant:
        return text
    question = f"did you mean {' or '.join(f'{g}={value}' for g in meant)}?"
    return f"{text[:override.start(0)]}Could not override '{name}': {question}" if override else f"{text} ({question})"


def _within_override(error: BaseException, cause: Any, key: str | None) -> str | None:
    """An override's list entry reports its key alone (``roundz``): put the override's key and the entry's
    index in front (``blocks[1].roundz``), the entry found by checking each against the entries' schema."""
    found = re.search(r"(?:Error merging override |To append to your config use \+)(\S+)", str(error))
    if not key or not found or error is cause:
        return key
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    override = OverridesParser.create().parse_override(found.group(1))
    name, value, schema = override.key_or_group, override.value(), getattr(cause, "object_type", None)
    if key.startswith(name) or not isinstance(value, list) or not dataclasses.is_dataclass(schema):
        return key
    for index, entry in enumerate(value):
        try:
            OmegaConf.merge(OmegaConf.structured(schema), entry)
        except (OmegaConfBaseException, ValueError, TypeError):
            return f"{name}[{index}].{key}"
    return key


def _plain(message: str) -> str:
    """OmegaConf's words for a value that should have been a list, without its node class names."""
    return re.sub(r"^Invalid value assigned: \w+ is not a ListConfig, list or tuple\.$",
                  "expected a list ([a, b, ...]), got a single value", message)


def _composing_line(group: str, message: str, details: list[str]) -> str:
    """One line for a config file that failed to merge: the file, the key within it and what is wrong."""
    message = _plain(message)
    key = next((line.split(":", 1)[1].strip() for line in details if line.startswith("full_key:")), "")
    text = f"ConfigError: {group}.yaml{f', {key}' if key else ''}: {message}"
    parts = group.split("/")
    if parts[0] == "kitchen" and len(parts) == 3 and re.match(rf"^kitchen\.{parts[1]}\.{parts[1]}\b", key):
        # without the header the file's own top key lands one level too deep (kitchen.skills.skills)
        text += "; a kitchen file starts with `# @package kitchen` (README: Your own kitchen)"
    elif parts[0] == "kitchen" and len(parts) == 3 and not key and message == "Cannot merge DictConfig with ListConfig":
        # kitchen.orders is a list: the header missing, or the entries not written as a list, both read so
        text = (f"ConfigError: {group}.yaml: kitchen.{parts[1]} is a list; a kitchen file starts with "
                f"`# @package kitchen` and writes each of its {parts[1]} as `- ...` (README: Your own kitchen)")
    return text


def user_errors() -> tuple[type[BaseException], ...]:
    """Failures a command reports in one line instead of a traceback (imported when first needed)."""
    from bpjax.agents.common import NonFiniteError
    from bpjax.data.traces import TraceError
    from bpjax.env.config import ConfigError
    from bpjax.solve.solver import SolverBudgetExceeded

    return ConfigError, TraceError, NonFiniteError, SolverBudgetExceeded


def settings_of(cfg: Any, validate: Callable[[Any], Any]) -> Any:
    """What a command does before any work: every value within its schema range
    (:func:`bpjax.config.ranges.check_config`), then the command's own `validate`. Raises
    :class:`BadSettings` with one line naming the key; returns what `validate` returns."""
    from omegaconf.errors import OmegaConfBaseException

    from bpjax.config.ranges import check_config

    try:
        message = check_config(cfg)
        if message:
            raise BadSettings(f"ConfigError: {message}")
        return validate(cfg)
    except BadSettings:
        raise
    except (ValueError, OSError, OmegaConfBaseException, *user_errors()) as error:
        raise BadSettings(one_line(error)) from None


def _shown(path: Path) -> str:
    try:
        relative = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return str(path)
    return str(relative) if relative.parts else str(path.resolve())


def remove_if_empty(out: Path) -> bool:
    """Remove an output folder that holds nothing but Hydra's own files (and empty parents up to the working
    directory): a command that did nothing leaves nothing. True when removed."""
    if not out.is_dir():
        return False
    own = {*HYDRA_FILES, *(p.name for p in out.glob("*.log"))}
    if any(p.name not in own for p in out.iterdir()):
        return False
    shutil.rmtree(out, ignore_errors=True)
    cwd, parent = Path.cwd().resolve(), out.resolve().parent
    while parent != cwd and cwd in parent.parents:
        try:
            parent.rmdir()  # only when empty
        except OSError:
            break
        parent = parent.parent
    return True


def ctrl_c_default() -> None:
    """A child process's `preexec_fn`: SIGINT back to its default, so a child meant to be stopped with Ctrl-C
    takes it even when this process was started with SIGINT ignored (a shell's background job does that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _fail(line: str, out: Path | None, status: int) -> None:
    if out is not None:
        remove_if_empty(out)
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    sys.exit(status)


def _task(name: str, cfg: Any, validate: Callable, work: Callable, errors: tuple) -> None:
    from hydra.core.hydra_config import HydraConfig

    quiet_library_logs()
    out = Path(HydraConfig.get().runtime.output_dir)
    try:
        settings = settings_of(cfg, validate)
    except BadSettings as error:
        _fail(str(error), out, EXIT_BAD_SETTINGS)
    log.info("python -m bpjax.%s %s", name, " ".join(HydraConfig.get().overrides.task))
    run = Run(name, out, Progress(bool(cfg.get("progress", True))))
    started = time.perf_counter()
    print(f"output folder: {_shown(out)}", file=sys.stderr, flush=True)  # last before the work: Ctrl-C is caught
    try:
        work(cfg, settings, run)
    except KeyboardInterrupt:  # Ctrl-C: what was written stays (a training run resumes from its checkpoint)
        # first: the clause below imports modules, which a Ctrl-C inside an import can have left half-made
        log.info("interrupted after %.1f s", time.perf_counter() - started)
        remove_if_empty(out)
        closing = f"\noutput folder: {_shown(out)}" if out.exists() else ""  # what the run wrote is kept there
        _fail(f"interrupted (Ctrl-C) after {time.perf_counter() - started:.1f} s{closing}", None, EXIT_INTERRUPTED)
    except (*user_errors(), *errors) as error:
        log.info("failed: %s", one_line(error))  # the job log; stderr gets the line below
        _fail(one_line(error), out, EXIT_FAILED)
    log.info("done in %.1f s", time.perf_counter() - started)
    print(f"output folder: {_shown(out)}", file=sys.stderr, flush=True)


def command(config_name: str, validate: Callable[[Any], Any], *, name: str | None = None,
            errors: tuple[type[BaseException], ...] = ()) -> Callable[[Callable], Callable[[], None]]:
    """Decorate `work(cfg, settings, run)` into the command line's ``main()`` for ``conf/<config_name>.yaml``;
    `errors` are further failures of the work to report in one line."""

    import hydra

    def decorate(work: Callable) -> Callable[[], None]:
        app = name or config_name

        @hydra.main(version_base=HYDRA_VERSION_BASE, config_path=CONF_DIR, config_name=config_name)
        def task(cfg: Any) -> None:
            _task(app, cfg, validate, work, errors)

        @functools.wraps(work)
        def main() -> None:
            start(task, config_name)

        main.validate = validate  # the same checks, for in-process callers (tests)
        return main

    return decorate


def start(task: Callable[[], None], config_name: str | None = None) -> None:
    """Run a Hydra task function: compilation cache on, the schemas `config_name` uses registered (untyped
    for --help, which then imports no JAX), and composition errors as one line."""
    from bpjax.config.cache import enable_compilation_cache
    from bpjax.config.schema import register

    enable_compilation_cache()
    register(config_name=config_name)  # untyped stand-ins when answering --help
    user_wants_traces = "HYDRA_FULL_ERROR" in os.environ
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # composition errors reach us instead of a printed trace
    try:
        task()
    except Exception as error:
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException
        from yaml import YAMLError

        given = group_given_settings(sys.argv[1:]) if isinstance(error, TypeError) else None
        if given and not user_wants_traces:
            _fail(given, None, EXIT_BAD_SETTINGS)
        if user_wants_traces or not isinstance(error, (HydraException, OmegaConfBaseException, YAMLError)):
            raise
        _fail(yaml_line(error) if isinstance(error, YAMLError) else one_line(error), None, EXIT_BAD_SETTINGS)


def yaml_line(error: Exception) -> str:
    """A config file that is not YAML, in one line: the file, the line and what the parser expected."""
    mark = getattr(error, "problem_mark", None)
    where = f"{mark.name}, line {mark.line + 1}" if mark is not None else "a config file"
    context, opened = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and opened is not None:
        context = f"{context} from line {opened.line + 1}"
    what = ", ".join(str(part) for part in (context, getattr(error, "problem", None)) if part)
    return f"ConfigError: {where}: not YAML ({what or error})"
