"""``python -m bpjax.imitate ...``: the older name of ``python -m bpjax.imitation ...``."""

from bpjax.imitation.__main__ import main

if __name__ == "__main__":
    main()
