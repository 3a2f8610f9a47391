"""Safety: how far a policy strays from the data it was trained on (uncertainty and distribution shift)."""
