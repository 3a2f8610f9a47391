"""Sweeps from W&B sweep files: members that differ only in hyperparameters' values train in one program."""
