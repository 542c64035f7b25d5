"""Pure planning computation: specs, memory fit, latency, capacity, recommendation, what-if.

Nothing in this package touches the network, files or global state; the knowledge base hands
it facts (models, GPUs, prices, use cases, calibration) as arguments.
"""

__version__ = "0.1.0"
