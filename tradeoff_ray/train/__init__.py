"""(Q)LoRA fine-tuning with Ray Train and LoRA-settings exploration with Ray Tune.

    dataset.py    Spider train -> TRL prompt/completion records (pure; split by database, over-length dropped)
    loop.py       the per-worker training function: TRL SFTTrainer + peft LoRA/QLoRA + Ray's HF callbacks
    ray_train.py  train_variant(cfg, variant, run_dir=...): TorchTrainer, adapters and result.json in the run dir
    tune.py       run_tune(cfg, run_dir=...): Tuner over tune.space, trials scored on Spider EX and MMLU
    health.py     stop a run at its first NaN/inf loss or grad norm (a transformers callback); the divergence record
    checks.py     what the driver checks before Ray starts (QLoRA needs CUDA + bitsandbytes)
"""
