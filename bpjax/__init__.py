"""bpjax: learn best-practice tips from trace data, on a pure JAX kitchen MDP."""

__version__ = "0.1.0"
