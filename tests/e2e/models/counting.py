"""A model that counts how many requests it serves at once and reports the most it has seen.

Each request sleeps for its first instance's first value in seconds (default 0.2), without
blocking the event loop, so nothing but the gateway keeps requests from overlapping here.
"""

import asyncio

from modelport import Model


class Counting(Model):
    def __init__(self, name):
        super().__init__(name)
        self.current = 0
        self.most = 0
        self.ready = True

    async def predict(self, payload, headers=None):
        instances = payload["instances"]
        seconds = float(instances[0][0]) if instances and instances[0] else 0.2
        self.current += 1
        self.most = max(self.most, self.current)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.current -= 1
        return {"predictions": [0 for _ in instances], "max_concurrency": self.most}
