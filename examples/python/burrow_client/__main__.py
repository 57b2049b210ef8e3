"""``python3 -m burrow_client``: the self-check (selfcheck.py)."""

import sys

from .selfcheck import main

sys.exit(main())
