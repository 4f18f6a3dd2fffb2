"""Evaluation: engines (HF, vLLM) behind one protocol, adapters, work rows, Ray Data stages, the pipeline.

Public entry points: `infer.shared.evaluate_labels` (every label of a stage; on vLLM one engine per GPU
serves them all), `infer.pipeline.evaluate` (one label), `infer.pipeline.evaluate_rows_local`
(the same stages without Ray), `infer.engine.select_engine`, `infer.adapters.merged_model_dir`.
"""
