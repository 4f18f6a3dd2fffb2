"""GSM8K (Cobbe et al. 2021): grade-school math word problems, a generative general-capability probe.

Sources: a directory with the original `test.jsonl` / `train.jsonl` (one `{"question", "answer"}`
object per line; the answer is a worked solution with calculator annotations `<<a*b=c>>` that ends
in a line `#### N`), or 'hub' = openai/gsm8k ('main' config). Problem ids are '<split>-<line index>'
so they match across copies. Few-shot exemplars are the first k train problems, as
lm-evaluation-harness's `gsm8k` task draws them from train.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from tradeoff_ray.errors import UserError

SPLITS = ("test", "train")
HUB_GSM8K = "openai/gsm8k"
_CALC = re.compile(r"<<[^<>]*>>")
_FINAL = re.compile(r"\n?####\s*(.+?)\s*$")


@dataclass(frozen=True)
class MathProblem:
    """One word problem: `solution` is the worked answer without calculator marks, `target` the final number."""

    example_id: str
    split: str
    question: str
    solution: str
    target: str


@dataclass
class Gsm8kData:
    splits: dict[str, list[MathProblem]]
    source: str = ""
    root: Path | None = None  # the directory it was read from (None for the hub)

    def exemplars(self, k: int) -> list[MathProblem]:
        """The first k train problems (the few-shot exemplars)."""
        return self.splits.get("train", [])[:k]


def parse_problem(raw: dict, *, split: str, index: int, where: str) -> MathProblem:
    """A GSM8K record -> MathProblem; the final answer is the text after '####' with commas removed."""
    question, answer = raw.get("question"), raw.get("answer")
    if not isinstance(question, str) or not isinstance(answer, str):
        raise UserError(f"{where}: expected an object with string fields 'question' and 'answer'")
    m = _FINAL.search(answer)
    if not m:
        raise UserError(f"{where}: the answer has no final '#### N' line; is this the original GSM8K format?")
    solution = _CALC.sub("", answer[:m.start()]).strip()
    return MathProblem(example_id=f"{split}-{index:04d}", split=split, question=question.strip(),
                       solution=solution, target=m.group(1).replace(",", "").strip())


def load_gsm8k_dir(root: str | Path) -> Gsm8kData:
    """test.jsonl (required) and train.jsonl (the few-shot source; optional) under `root`."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"data.gsm8k_dir {root} is not a directory; point it at the folder holding GSM8K's "
                        "test.jsonl and train.jsonl")
    splits: dict[str, list[MathProblem]] = {}
    for split in SPLITS:
        path = root / f"{split}.jsonl"
        if not path.exists():
            if split == "test":
                raise UserError(f"{path} not found; data.gsm8k_dir must hold GSM8K's test.jsonl (and train.jsonl "
                                "for few-shot exemplars)")
            continue
        problems = []
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise UserError(f"{path} is not UTF-8 text ({e}); use the original GSM8K jsonl files") from e
        for i, line in enumerate(line for line in lines if line.strip()):
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path} line {i + 1}: not JSON ({e.msg})") from e
            problems.append(parse_problem(raw, split=split, index=i, where=f"{path} line {i + 1}"))
        if not problems:
            raise UserError(f"{path} holds no problems")
        splits[split] = problems
    return Gsm8kData(splits=splits, source=str(root), root=root)


def load_gsm8k_hub() -> Gsm8kData:
    """openai/gsm8k from the Hugging Face hub (needs network access and the `datasets` package)."""
    from datasets import load_dataset

    splits = {}
    for split in SPLITS:
        ds = load_dataset(HUB_GSM8K, "main", split=split)
        splits[split] = [parse_problem(dict(r), split=split, index=i, where=f"{HUB_GSM8K}[{split}][{i}]")
                         for i, r in enumerate(ds)]
    return Gsm8kData(splits=splits, source=f"hub:{HUB_GSM8K}")


def load_gsm8k(gsm8k_dir: str) -> Gsm8kData:
    """The set `data.gsm8k_dir` names: 'hub' = openai/gsm8k, else a directory of the original jsonl files."""
    return load_gsm8k_hub() if gsm8k_dir.strip().lower() == "hub" else load_gsm8k_dir(gsm8k_dir)


def select_problems(data: Gsm8kData, *, limit: int | None, seed: int, split: str = "test") -> list[MathProblem]:
    """All problems of `split`, or a seeded sample of `limit` of them in their original order."""
    from tradeoff_ray.data.spider import sample_examples  # the one seeded sampler of the data layer

    return sample_examples(data.splits.get(split, []), limit, seed)
