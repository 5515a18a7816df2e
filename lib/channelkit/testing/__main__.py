"""``python -m channelkit.testing``: the same as ``python -m channelkit.testing.simulator``."""

import sys

from channelkit.testing.simulator import main

sys.exit(main())
