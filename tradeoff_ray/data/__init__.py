"""Data: Spider-format Text-to-SQL and MMLU-format multiple choice, real or built-in demo.

`types` (shared records), `spider` (load_spider, sample_examples, split_train_validation),
`schema` (schema_text: the one schema serializer training and evaluation share), `mmlu`
(load_mmlu, balanced_subset, select_mmlu, manifests), `mmlu_categories` (the official map),
`demo` (the offline demo benchmark and multiple-choice set).
"""
