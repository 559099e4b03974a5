"""Test upstream: V1 predict answers with the identity and credential headers it received."""

from modelport import Model


class EchoHeaders(Model):
    def load(self):
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        headers = headers or {}
        names = ("kubeflow-userid", "kubeflow-groups", "authorization", "cookie")
        return {"predictions": [headers.get(name) for name in names]}
