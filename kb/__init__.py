"""The knowledge base: a SQLite store of models, GPUs, prices, use cases, benchmarks, outcomes,
plans, pull requests and an audit log, seeded from the reviewed files in `kb/data/`."""
