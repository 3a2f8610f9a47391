"""Off-policy evaluation: estimators of a target policy's value from logged episodes, and policy-selection metrics."""
