"""Test upstream: V1 predict answers with the identity headers the gateway forwarded."""

from modelport import Model


class EchoHeaders(Model):
    def load(self):
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        headers = headers or {}
        return {"predictions": [headers.get("kubeflow-userid"), headers.get("kubeflow-groups")]}
