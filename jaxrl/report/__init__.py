"""Aggregate statistics over runs, seeds and tasks (`jaxrl report`): IQM, mean, median and optimality gap with
stratified bootstrap confidence intervals, performance profiles and learning curves.

`stats` holds the estimators (numpy only), `runs` reads run folders, `build` assembles and writes the report,
`markdown` and `plots` render it. Nothing here imports matplotlib until a report is written.
"""
