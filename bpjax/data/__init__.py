"""Trace data: logs of people's (or synthetic players') decisions, one row per decision.

The names below come from :mod:`bpjax.data.traces`, imported (with pandas) on first use: ``python -m
bpjax.data --help`` does not need it.
"""

__all__ = ["TRACE_COLUMNS", "Rejected", "TraceError", "TraceSet", "append_trace_rows", "read_traces", "record_episode",
           "skipped_note", "trace_row", "validate_traces", "write_traces"]


def __getattr__(name: str):
    if name in __all__:
        from bpjax.data import traces

        return getattr(traces, name)
    raise AttributeError(f"module 'bpjax.data' has no attribute {name!r}")
