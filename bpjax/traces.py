"""``python -m bpjax.traces generate ...``: the older name of ``python -m bpjax.data generate ...``."""

from bpjax.data.__main__ import main

if __name__ == "__main__":
    main("python -m bpjax.traces")
