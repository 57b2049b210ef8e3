#!/usr/bin/env python3
"""The old way to run the self-check, kept so that existing commands work:

    python3 examples/python/burrow_client.py --port 7440

is now ``python3 -m burrow_client`` (or ``burrow-client-check`` once
installed). The client is the package ``burrow_client/`` beside this file;
``import burrow_client`` finds the package, not this file, since a package
directory takes precedence over a module of the same name.
"""

import sys

from burrow_client.selfcheck import main

if __name__ == "__main__":
    sys.exit(main())
