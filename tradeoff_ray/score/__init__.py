"""Scoring: pure cores that the Ray scorer actors wrap (no torch, no Ray imported here).

- sql_exec     read-only, guarded, time-limited SQLite execution (ReadOnlyDatabase, ConnectionCache)
- sql_text     statement boundaries, ORDER BY detection, the official DISTINCT removal
- sql_compare  official test-suite result comparison and mismatch sub-kinds
- sql_extract  the SQL answer in a generation (or None: extraction_failed)
- sql_score    verdict + error taxonomy of one prediction; SqlScorer (connection and gold caches)
- sql_batch    many records over worker processes (score-sql, benchmarks)
- hardness     official Spider hardness levels, from a sqlglot parse
- mmlu_score   letter choice / extraction and MMLU accuracy tables with Wilson intervals
"""
