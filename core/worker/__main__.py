"""``python -m recfw.worker [JOB]``: the same as ``recfw worker [JOB]``."""

import sys

from ..cli import main

if __name__ == "__main__":
    # Leading -v/-vv are recfw's own (log verbosity), the rest are the worker's.
    args = sys.argv[1:]
    verbose = [a for a in args[:1] if a in ("-v", "-vv")]
    main([*verbose, "worker", *args[len(verbose) :]], prog_name="recfw")
