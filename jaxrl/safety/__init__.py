"""Safety: cost constraints (a Lagrange multiplier for PPO and for the replay loop's agents) and how far a policy
strays from the data it was trained on (uncertainty and distribution shift)."""
