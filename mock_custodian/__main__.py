"""python -m mock_custodian."""

import sys

from mock_custodian.cli import main

sys.exit(main())
