"""repbench: latency and effectiveness benchmarks for representative-token retrievers."""

__version__ = "0.1.0"
SCHEMA_VERSION = 1


def __getattr__(name: str):
    # The pandas API (repbench.api) is loaded on first use, so `import repbench` and `repbench --help`
    # stay free of pandas and pytrec_eval.
    if name == "evaluate":
        import importlib

        return importlib.import_module("repbench.api").evaluate
    raise AttributeError(f"module 'repbench' has no attribute {name!r}")
