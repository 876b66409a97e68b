"""repbench: latency and effectiveness benchmarks for representative-token retrievers."""

__version__ = "0.1.0"
SCHEMA_VERSION = 1
