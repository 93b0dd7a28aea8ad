"""A slow Python actor for bench/calls.py: ``sleeper.nap(ms)`` blocks its
own worker process for ``ms`` milliseconds, so that C++ methods awaiting it
stay suspended for a known time without taking their own worker's thread."""
import time

import troupe


@troupe.actor("sleeper")
class Sleeper:
    def nap(self, ms: int) -> int:
        time.sleep(ms / 1000)
        return ms
