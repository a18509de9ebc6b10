"""Use cases: serve a batch of prediction requests with the models the registry deploys."""
