"""The prompt builders, shared by training and evaluation so both see the same text.

Text-to-SQL: a chat (system + user: schema and question) whose assistant turn is the SQL alone.
Training feeds TRL the same messages in prompt/completion form; evaluation renders the prompt
messages with the tokenizer's chat template and `add_generation_prompt=True`.

MMLU: the lm-evaluation-harness format ("The following are multiple choice questions (with
answers) about {subject}." + k dev exemplars + question, `A. ...` lines, `Answer:`), scored by the
log-probability of " A".." D" (word-boundary space in the continuation, as the harness does).

GSM8K: an instruction, k train exemplars as earlier chat turns (worked solution ending in '#### N'),
then the problem; greedy generation read by `score.gsm8k_score`.
"""
from __future__ import annotations

import hashlib
from typing import Any, Sequence

from tradeoff_ray.config import PromptConfig
from tradeoff_ray.data.types import LETTERS, McQuestion

Message = dict[str, str]

MMLU_CONTINUATIONS = tuple(f" {letter}" for letter in LETTERS)


def normalize_sql(sql: str) -> str:
    """Collapse whitespace outside string literals and drop a trailing ';' (training targets)."""
    out, quote = [], None
    for ch in sql.strip():
        if quote:
            out.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
            out.append(ch)
        elif ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(ch)
    return "".join(out).strip().rstrip(";").strip()


def sql_user_message(schema_text: str, question: str) -> str:
    return f"Database schema:\n{schema_text}\n\nQuestion: {question.strip()}\n\nWrite the SQLite query."


def sql_messages(schema_text: str, question: str, cfg: PromptConfig) -> list[Message]:
    """System + user messages for one question (no assistant turn)."""
    return [
        {"role": "system", "content": cfg.system_prompt},
        {"role": "user", "content": sql_user_message(schema_text, question)},
    ]


def sql_training_record(schema_text: str, question: str, gold_sql: str, cfg: PromptConfig) -> dict[str, Any]:
    """TRL conversational prompt/completion record: loss is taken on the completion (the SQL) only."""
    return {
        "prompt": sql_messages(schema_text, question, cfg),
        "completion": [{"role": "assistant", "content": normalize_sql(gold_sql)}],
    }


def render_chat(tokenizer: Any, messages: Sequence[Message], *, use_chat_template: bool = True) -> str:
    """Prompt text that ends where the model's answer starts."""
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    parts = [f"{m['content']}" for m in messages]
    return "\n\n".join(parts) + "\n\nSQL:"


def subject_title(subject: str) -> str:
    return subject.replace("_", " ")


def format_mc_question(q: McQuestion, *, with_answer: bool) -> str:
    lines = [q.question.strip()]
    lines += [f"{letter}. {str(choice).strip()}" for letter, choice in zip(LETTERS, q.choices)]
    lines.append(f"Answer: {q.answer}" if with_answer else "Answer:")
    return "\n".join(lines)


def mmlu_prompt(q: McQuestion, exemplars: Sequence[McQuestion]) -> str:
    """Harness-format context for `q`; the continuations to score are MMLU_CONTINUATIONS."""
    head = f"The following are multiple choice questions (with answers) about {subject_title(q.subject)}.\n\n"
    shots = "".join(format_mc_question(e, with_answer=True) + "\n\n" for e in exemplars)
    return head + shots + format_mc_question(q, with_answer=False)


def mmlu_cloze_prompt(q: McQuestion, exemplars: Sequence[McQuestion]) -> str:
    """Cloze form: no lettered options; the continuations are the options' texts (`mmlu_cloze_continuations`)."""
    head = f"The following are questions (with answers) about {subject_title(q.subject)}.\n\n"
    shots = "".join(f"Question: {e.question.strip()}\nAnswer: {str(e.choices[e.answer_index]).strip()}\n\n"
                    for e in exemplars)
    return head + shots + f"Question: {q.question.strip()}\nAnswer:"


def mmlu_cloze_continuations(q: McQuestion) -> tuple[str, ...]:
    """' <option text>' for each option (word-boundary space in the continuation, as for letters)."""
    return tuple(f" {str(c).strip()}" for c in q.choices)


def mmlu_chat_prompt(tokenizer: Any, q: McQuestion, exemplars: Sequence[McQuestion]) -> str:
    """The same question wrapped as one user turn of the chat template (optional mode)."""
    content = mmlu_prompt(q, exemplars).removesuffix("Answer:").rstrip()
    content += "\n\nAnswer with the letter of the correct option."
    text = tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                         add_generation_prompt=True)
    return text + "Answer:"


GSM8K_INSTRUCTION = ("Solve the math word problem. Reason step by step, then give the final answer on its own "
                     "last line as '#### <number>'.")
# Plain-text (no chat template) generation stops at the next question, as lm-evaluation-harness's gsm8k does.
GSM8K_STOP = ["\n\nQuestion:", "\nQuestion:"]


def gsm8k_solution_text(solution: str, target: str) -> str:
    """An exemplar's answer turn: the worked solution, then the '#### N' line the scorer reads."""
    return f"{solution.strip()}\n#### {target}"


def gsm8k_messages(question: str, exemplars: Sequence[tuple[str, str]]) -> list[Message]:
    """Chat messages for one problem: the instruction, then k (question, answer turn) exemplar pairs as
    earlier turns, then the problem. `exemplars` holds (question, gsm8k_solution_text(...)) pairs."""
    messages: list[Message] = [{"role": "system", "content": GSM8K_INSTRUCTION}]
    for q, a in exemplars:
        messages += [{"role": "user", "content": f"Question: {q.strip()}"}, {"role": "assistant", "content": a}]
    messages.append({"role": "user", "content": f"Question: {question.strip()}"})
    return messages


def gsm8k_prompt(tokenizer: Any, question: str, exemplars: Sequence[tuple[str, str]], *,
                 use_chat_template: bool = True) -> str:
    """The prompt text: chat-templated for instruct models, else harness-style 'Question: …\nAnswer:' blocks."""
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(gsm8k_messages(question, exemplars), tokenize=False,
                                             add_generation_prompt=True)
    shots = "".join(f"Question: {q.strip()}\nAnswer: {a}\n\n" for q, a in exemplars)
    return f"{GSM8K_INSTRUCTION}\n\n{shots}Question: {question.strip()}\nAnswer:"


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

