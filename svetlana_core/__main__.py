"""``python -m svetlana_core``: see :mod:`svetlana_core.cli`."""

import sys

from svetlana_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
