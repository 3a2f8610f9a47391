"""The pipeline's stages, in order; each is `run(context) -> StageResult` (jaxrl/deploy/pipeline.py)."""
