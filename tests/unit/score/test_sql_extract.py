"""SQL extraction from realistic generations: the answer, never an echoed example; None, never a guess."""
from __future__ import annotations

import pytest

from tradeoff_ray.score.sql_extract import extract_sql

Q = "SELECT name FROM singer WHERE age > 30"


@pytest.mark.parametrize("text", [
    Q,
    Q + ";",
    "  " + Q + " ;\n",
    Q + "<|im_end|>",
    Q + "<|im_end|>\n<|im_start|>user\nNow count them: SELECT count(*) FROM singer",
    "<|im_start|>assistant\n" + Q + "<|im_end|>",
    Q + "<|endoftext|>SELECT 1",
    Q + "</s>",
])
def test_bare_sql_is_returned_as_is(text):
    assert extract_sql(text) == Q


def test_bare_multiline_sql_with_clause_after_blank_line():
    text = "SELECT name\nFROM singer\n\nWHERE age > 30\nORDER BY name"
    assert extract_sql(text) == text


@pytest.mark.parametrize("text", [
    f"```sql\n{Q}\n```",
    f"```SQL\n{Q};\n```",
    f"```\n{Q}\n```",
    f"```{Q}```",
    f"```sql {Q} ```",
    f"Here is the query:\n\n```sql\n{Q}\n```\n\nThis query selects singers older than 30.",
    f"To answer this, we need the singer table.\n```sqlite\n{Q}\n```\nExplanation: filters by age.",
    f"```sql\n{Q}",  # generation cut off before the closing fence
])
def test_fenced_blocks(text):
    assert extract_sql(text) == Q


@pytest.mark.parametrize("text", [
    f"{Q}\n\nThis query returns the names of singers older than 30.",
    f"{Q}\nExplanation: it filters the singer table.",
    f"{Q}. This returns the names.",
    f"SQL: {Q}\nQuestion: How many singers are there?\nSQL: SELECT count(*) FROM singer",
    f"Sure! The SQL query is:\n\n{Q}\n\nHope this helps.",
    f"The answer is `{Q}`.",
    f"You can use the following.\n{Q};\nIt uses a WHERE clause.",
    f"Answer: {Q.lower()}",
])
def test_trailing_prose_and_labels_are_stripped(text):
    assert extract_sql(text).lower() == Q.lower()


def test_semicolon_inside_string_does_not_end_statement():
    sql = "SELECT name FROM singer WHERE name = 'a;b' OR name = \"c;d\""
    assert extract_sql(sql + "; SELECT 2") == sql
    assert extract_sql(f"```sql\n{sql};\nSELECT 2;\n```") == sql


def test_several_blocks_first_answer_not_later_variant():
    text = (f"```sql\n{Q}\n```\n\nFor example, to also get their age you could use:\n"
            "```sql\nSELECT name, age FROM singer WHERE age > 30\n```")
    assert extract_sql(text) == Q


def test_several_blocks_echoed_example_then_labelled_answer():
    text = ("Here is an example of a similar query from the instructions:\n"
            "```sql\nSELECT count(*) FROM concert\n```\n"
            f"Now for your question, the final answer is:\n```sql\n{Q}\n```")
    assert extract_sql(text) == Q


def test_schema_echo_block_is_not_a_candidate():
    text = ("The schema is:\n```sql\nCREATE TABLE singer (name TEXT, age INT);\n```\n"
            f"and the query:\n```sql\n{Q}\n```")
    assert extract_sql(text) == Q


def test_avoid_skips_prompt_demos():
    demo = "SELECT count(*) FROM concert"
    text = f"SQL: {demo}\nSQL: {Q}"
    assert extract_sql(text) == demo
    assert extract_sql(text, avoid=[demo + ";"]) == Q
    assert extract_sql(f"```sql\n{demo}\n```", avoid=[demo]) is None


def test_with_cte_and_not_english_with():
    cte = "WITH old AS (SELECT * FROM singer WHERE age > 30) SELECT name FROM old"
    assert extract_sql(cte) == cte
    assert extract_sql(f"With this query you get the names:\n{Q}") == Q


@pytest.mark.parametrize("text", [
    None,
    "",
    "I don't know.",
    "Select the singers older than 30 from the table.",
    "With pleasure! Unfortunately I cannot access the database.",
    "```python\nprint('hello')\n```",
    "<|im_end|>",
])
def test_no_sql_gives_none(text):
    assert extract_sql(text) is None


def test_invalid_sql_is_still_extracted_for_scoring():
    assert extract_sql("SELECT name FROM singer WHERE") == "SELECT name FROM singer WHERE"


def test_answer_before_explanation_with_inline_code():
    text = "SELECT COUNT(*) FROM singer;\n\nExplanation:\n- `SELECT COUNT(*)` counts the rows of `singer`."
    assert extract_sql(text) == "SELECT COUNT(*) FROM singer"


def test_comment_in_fence_before_the_query():
    text = "```sql\n-- select the singers older than 30\n/* by age */\nSELECT name FROM singer WHERE age > 30;\n```"
    assert extract_sql(text) == "SELECT name FROM singer WHERE age > 30"
