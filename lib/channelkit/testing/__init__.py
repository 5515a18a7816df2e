"""Helpers for testing code that uses channelkit, shipped with the package.

* ``channelkit.testing.simulator`` — a local HTTP server that plays Google's side
  of push notifications (watch, stop, and the notifications themselves).
* ``channelkit.testing.fixtures`` — a pytest fixture, ``simulator``, around it.
* ``channelkit.testing.emulators`` — start and reset the Firestore and Pub/Sub emulators.
* ``channelkit.testing.harness`` — what tests, benchmarks and scripts share: notification
  headers, a proxy-less ``post``, ``wait_until``, a loopback receiver, a functions-framework process.
"""

__all__: list[str] = []  # a namespace: import the submodules
