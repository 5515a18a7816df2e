"""``python -m channelkit``: see channelkit.cli."""

import sys

from channelkit.cli import main

sys.exit(main())
