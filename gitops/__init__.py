"""Everything that leaves the planner for the outside: rendered bundles, forges and pull requests,
the SLO reporter, and read-only cluster inventory."""
