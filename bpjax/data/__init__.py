"""Trace data: logs of people's (or synthetic players') decisions, one row per decision."""

from bpjax.data.traces import (TRACE_COLUMNS, Rejected, TraceError, TraceSet, append_trace_rows, read_traces,
                               record_episode, trace_row, validate_traces, write_traces)

__all__ = ["TRACE_COLUMNS", "Rejected", "TraceError", "TraceSet", "append_trace_rows", "read_traces", "record_episode",
           "trace_row", "validate_traces", "write_traces"]
