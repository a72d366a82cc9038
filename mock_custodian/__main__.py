"""python -m mock_custodian."""

import sys

from mock_custodian.cli.main import main

sys.exit(main())
