"""Control plane: InferenceService specs, their store, the controller that runs them,
model storage, autoscaling, and the backends that start model servers."""
