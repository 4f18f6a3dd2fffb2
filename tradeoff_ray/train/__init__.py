"""(Q)LoRA fine-tuning with Ray Train (the Ray Tune sweep that drives it is tradeoff_ray/sweep.py).

    dataset.py    Spider train -> TRL prompt/completion records (pure; split by database, over-length dropped)
    loop.py       the per-worker training function: TRL SFTTrainer + peft LoRA/QLoRA + Ray's HF callbacks
    ray_train.py  train_variant(cfg, variant, run_dir=...): TorchTrainer, adapters and result.json in the run dir
    health.py     stop a run at its first NaN/inf loss or grad norm (a transformers callback); the divergence record
    checks.py     what the driver checks before Ray starts (QLoRA needs CUDA + bitsandbytes)
"""
