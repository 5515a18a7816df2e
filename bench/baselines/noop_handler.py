"""The application handler the benchmarked channelkit webhook calls: does nothing."""


def handle(notification, channel):
    return None
