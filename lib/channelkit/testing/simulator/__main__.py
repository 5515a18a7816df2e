"""``python -m channelkit.testing.simulator``: see ``cli.main``."""

import sys

from channelkit.testing.simulator.cli import main

sys.exit(main())
