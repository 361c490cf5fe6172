"""``python -m fastdl`` and the ``fastdl`` console script."""
import sys

from fastdl.cli import main

if __name__ == "__main__":
    sys.exit(main())
