"""channelkit: receive Google API push notifications on Google Cloud, reliably.

The names most code needs are here; the modules hold the rest.
"""

from channelkit.channel import (
    Channel,
    Notification,
    new_webhook_channel,
    notification_from_headers,
)
from channelkit.errors import ChannelkitError, InvalidNotificationError

__all__ = [
    "Channel",
    "ChannelkitError",
    "InvalidNotificationError",
    "Notification",
    "new_webhook_channel",
    "notification_from_headers",
]
__version__ = "0.1.0"
