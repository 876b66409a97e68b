"""Search latency vs index size: single-vector inner product (faiss IndexFlatIP), exact multi-vector
MaxSim for each K_p, and sparse; batch 1 and batched queries, synthetic unit vectors of the
backbones' hidden sizes. Sub-millisecond searches are timed in blocks (extra_info block_size).
"""


def test_search_latency(benchmark, record_cell, search_runner, pedantic_runner, search_cell):
    benchmark.group = f"search {search_cell.kind} k_p={search_cell.k_p} batch={search_cell.query_batch}"
    record_cell(search_runner.run(search_cell, pedantic_runner))
