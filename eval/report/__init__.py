"""Results (headline metrics with CIs, strata, tool decisions), plots and the Markdown report."""
