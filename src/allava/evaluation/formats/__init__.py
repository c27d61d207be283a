"""The file layouts benchmarks come in, and what their readers share.

  `common`          helpers of every layout: empty cells, indices, most frequent answer, file checks.
  `vlmevalkit_tsv`  the generic reader of VLMEvalKit's TSV files (`load_tsv_benchmark`).
  `tsv_rows`        how a benchmark's own TSV reader turns rows into items (`read_benchmark_tsv`).
  `llava`           what the readers of LLaVA-1.5's question files, annotations and image folders share.

The readers of one benchmark live with it, in `allava.evaluation.benchmarks`.
"""
