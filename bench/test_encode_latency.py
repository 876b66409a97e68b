"""Query-encoding latency per (backbone, encoder, K, input length, batch): sequential vs parallel.

One benchmark per cell (cells from bench/conftest.py options). extra_info carries every raw sample,
prefill and per-decode-step times (sequential), memory, energy and throughput (docs/contracts.md).
"""


def test_encode_latency(benchmark, record_cell, encode_runner, pedantic_runner, encode_cell):
    benchmark.group = f"encode L={encode_cell.input_tokens} B={encode_cell.batch_size}"
    record_cell(encode_runner.run(encode_cell, pedantic_runner))
