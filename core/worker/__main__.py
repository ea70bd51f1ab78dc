"""``python -m recfw.worker [JOB]``: the same as ``recfw worker [JOB]``."""

import sys

from ..cli import main

if __name__ == "__main__":
    main(["worker", *sys.argv[1:]], prog_name="recfw")
