"""Deployment: policies as self-contained bundles, the registry of versions with one live, and the staged pipeline."""
