"""The Ray Serve application: model and tool deployments behind an authenticated FastAPI ingress."""
