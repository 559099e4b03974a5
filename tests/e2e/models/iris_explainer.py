"""A KServe-style custom explainer: ``explain()`` asks the predictor (the platform gives it
the predictor's address, as KServe's --predictor_host) and explains from its answer."""

from modelport import Model

NAMES = ["setosa", "versicolor", "virginica"]


class IrisExplainer(Model):
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    async def explain(self, payload, headers=None):
        answer = await self.predict(payload, headers)  # forwarded to the predictor
        return {
            "explanations": [
                {"class": p, "name": NAMES[p], "row": row}
                for p, row in zip(answer["predictions"], payload["instances"], strict=True)
            ],
            "explainer": True,
        }
