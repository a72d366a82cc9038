"""python -m mock_custodian."""

import sys

from .cli import main

sys.exit(main())
