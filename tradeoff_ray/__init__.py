"""tradeoff_ray: what does LoRA/QLoRA fine-tuning gain on Text-to-SQL, and what does it cost on MMLU?"""

__version__ = "0.1.0"
