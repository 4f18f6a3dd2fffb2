"""Find the SQL answer in a model generation, or say there is none (`extraction_failed`).

A source study scored an echoed few-shot demo instead of the answer; this module is written so
that cannot happen silently. The rules, in order:

1. Chat artefacts: text after the first end-of-turn marker (`<|im_end|>`, `<|endoftext|>`,
   `<|eot_id|>`, `</s>`, a new `<|im_start|>` turn, ...) is dropped, other `<|...|>` tokens removed.
2. Fenced code blocks (```sql ... ```, bare ``` ... ```, an unclosed last fence) that hold a
   SELECT/WITH query are the candidates. Queries listed in `avoid` (e.g. the few-shot demos of
   the prompt) are never chosen. When the prose just before a block announces the answer
   ("final answer", "answer:", "corrected query", "for your question", ...), the last such block
   wins; otherwise the first block that is not introduced as an example / alternative wins
   (models answer first and add variants after). Inside a fence the query ends at the first ';'.
3. Without fenced candidates: a bare statement that starts the text, a line, or follows a ':'
   ("SQL: SELECT ..."); else an inline `SELECT ...` code span; else an upper-case SELECT anywhere.
   Lower-case `select` outside code must parse as SQL (prose such as "Select the ..." does not
   count); a WITH must look like a CTE (`WITH name AS (`).
   A bare statement ends at the first ';' outside quotes and comments, a blank line not followed by
   a clause keyword, a line that opens with prose or a label ("This query ...", "Explanation:",
   "SQL:", "Question:", a Markdown heading...), or a sentence end (". The ...").
4. Trailing ';' and '.' are dropped. No candidate -> None; nothing is ever guessed.

Work is linear in the text: at most MAX_BARE_CANDIDATES bare statements are tried per rule, only
lower-case candidates up to MAX_PARSED_CHARS are parsed, and a generation longer than sql_text.MAX_TEXT_CHARS raises TextTooLong instead of being searched.

The project's fine-tuned models answer with the bare normalized SQL (prompts.normalize_sql), which
rule 3 returns unchanged.
"""
from __future__ import annotations

import re
from typing import Iterable

import sqlglot

from tradeoff_ray.score.sql_text import check_length

_END_MARKERS = re.compile(r"<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>|<\|end_of_text\|>|<\|end\|>|</s>"
                          r"|<end_of_turn>|<\|im_start\|>|<\|start_header_id\|>")
_LEADING_TURN = re.compile(r"^\s*(?:<\|im_start\|>|<\|start_header_id\|>)\s*assistant\s*(?:<\|end_header_id\|>)?\s*")
_SPECIAL_TOKEN = re.compile(r"<\|[^|<>\s]{1,40}\|>")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n`]*?(?:\n|(?=\S))(.*?)(?:```|\Z)", re.DOTALL)
_FENCE_LANGS = {"", "sql", "sqlite", "sqlite3", "postgresql", "postgres", "mysql", "tsql", "plsql", "psql",
                "ansi", "text", "plaintext", "sh", "bash", "console"}
_INLINE = re.compile(r"(?<!`)`((?:SELECT|WITH)\b[^`\n]+)`(?!`)", re.IGNORECASE)
_QUERY_START = re.compile(r"\b(SELECT|WITH)\b", re.IGNORECASE)
_CTE = re.compile(r"WITH\s+(?:RECURSIVE\s+)?[\w\"`\[\]]{1,200}\s*(?:\([^)]{0,2000}\))?\s+AS\s*(?:(?:NOT\s+)?MATERIALIZED\s*)?\(",
                  re.IGNORECASE)
_ANSWER_CUE = re.compile(r"\b(?:final|answer|solution|corrected|fixed|correct (?:query|sql)|your question"
                         r"|the query (?:is|would be)|result(?:ing)? query)\b", re.IGNORECASE)
_EXAMPLE_CUE = re.compile(r"\b(?:example|e\.g\.|for instance|sample|similar(?:ly)?|alternative(?:ly)?"
                          r"|another (?:way|option|approach)|you could also|or you can|instead)\b", re.IGNORECASE)
_PROSE_LINE = re.compile(
    r"\s*(?:#{1,6}\s|\*\*|[-*]\s+[A-Z][a-z]|\d+\.\s+[A-Z][a-z]|[A-Z][A-Za-z]*(?: [A-Za-z]+){0,2}:(?:\s|$)|"
    r"(?:This|That|These|Those|The|Here|Here's|Note|Explanation|In|It|It's|We|You|I|Question|Answer|Output"
    r"|Result|Results|Assistant|User|Human|Let|Let's|Hope|Please|Also|Alternatively|However|Therefore|Thus"
    r"|So|If|To|When|For|Make|Remember|Example|Sure|Certainly|Step|Now|First|Finally|Each|Then)"
    r"(?::|,?\s+[a-z]))")
_CONTINUATION = re.compile(r"\s*(?:(?:FROM|WHERE|JOIN|INNER|LEFT|RIGHT|CROSS|NATURAL|ON|GROUP|ORDER|HAVING|LIMIT"
                           r"|OFFSET|UNION|INTERSECT|EXCEPT|AND|OR|NOT|AS|IN)\b|[),])", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.\s+[A-Z][a-z]")
_WS = re.compile(r"\s+")
_WS_RUN = re.compile(r"\s*")
MAX_BARE_CANDIDATES = 32  # bare statements tried per rule: bounds the work on prose full of "select"
MAX_PARSED_CHARS = 5_000  # lower-case candidates longer than this are not parsed (Spider's longest: ~600)
_LEADING_COMMENTS = re.compile(r"\A(?:\s*(?:--[^\n]*(?:\n|\Z)|/\*.*?\*/))*")


def extract_sql(text: str | None, *, avoid: Iterable[str] = ()) -> str | None:
    """The SQL query the generation answers with, or None when it holds none (see module rules)."""
    if not text:
        return None
    text = clean_generation(check_length(text, "generation"))
    avoided = {_key(a) for a in avoid}
    fenced = _fenced_candidates(text, avoided)
    if fenced is not None:
        return fenced
    text = _FENCE.sub("\n\n", text)  # fenced text was judged above
    found = _bare_statement(text, avoided, anywhere=False)
    if found is not None:
        return found
    for match in _INLINE.finditer(text):
        statement = _finish(_cut_code(match.group(1)))
        if statement and _key(statement) not in avoided:
            return statement
    return _bare_statement(text, avoided, anywhere=True)


def clean_generation(text: str) -> str:
    """The generation up to the first end-of-turn marker, without special tokens."""
    text = _LEADING_TURN.sub("", text, count=1)
    for part in _END_MARKERS.split(text):
        if part.strip():
            return _SPECIAL_TOKEN.sub("", part).strip()
    return ""


def _key(sql: str) -> str:
    return _WS.sub(" ", sql).strip().rstrip(";").strip().lower()


def _fenced_candidates(text: str, avoided: set[str]) -> str | None:
    """The answer among fenced blocks, or None when no fenced block holds an acceptable query."""
    blocks: list[tuple[str, str]] = []  # (lead-in prose, statement)
    prev_end = 0
    for match in _FENCE.finditer(text):
        lang, body = match.group(1), match.group(2)
        if lang.lower() not in _FENCE_LANGS:  # "```SELECT ..." on one line: no language tag
            body = text[match.start() + 3:match.end()].removesuffix("```")
        lead_in = text[prev_end:match.start()][-200:]
        prev_end = match.end()
        body = _LEADING_COMMENTS.sub("", body)
        start = _QUERY_START.search(body)
        if start is None or (start.group(1).lower() == "with" and not _CTE.match(body, start.start())):
            continue
        statement = _finish(_cut_code(body[start.start():]))
        if statement and _key(statement) not in avoided:
            blocks.append((lead_in, statement))
    if not blocks:
        return None
    cued = [s for lead, s in blocks if _ANSWER_CUE.search(lead) and not _EXAMPLE_CUE.search(lead)]
    if cued:
        return cued[-1]
    plain = [s for lead, s in blocks if not _EXAMPLE_CUE.search(lead)]
    return (plain or [s for _, s in blocks])[0]


def _bare_statement(text: str, avoided: set[str], *, anywhere: bool) -> str | None:
    """First acceptable statement opening the text, a line or following a ':' (anywhere=False),
    or an upper-case SELECT elsewhere (anywhere=True)."""
    tried = 0
    for match in _QUERY_START.finditer(text):
        start, word = match.start(), match.group(1)
        before = start
        while before > 0 and text[before - 1] in " \t":
            before -= 1
        at_boundary = before == 0 or text[before - 1] in "\n:>"
        if at_boundary == anywhere or (anywhere and word != "SELECT"):
            continue
        if word.lower() == "with" and not _CTE.match(text, start):
            continue
        tried += 1
        if tried > MAX_BARE_CANDIDATES:
            return None
        upper = word == word.upper()  # lower-case ones must parse, so longer ones need no reading
        statement = _finish(_cut_prose(text[start:] if upper else text[start:start + MAX_PARSED_CHARS + 1]))
        if not statement or _key(statement) in avoided:
            continue
        if not upper and not _parses(statement):
            continue
        return statement
    return None


def _parses(sql: str) -> bool:
    if len(sql) > MAX_PARSED_CHARS:
        return False
    try:
        return sqlglot.parse_one(sql, read="sqlite") is not None
    except (sqlglot.errors.SqlglotError, RecursionError):  # too deep for sqlglot: not taken as prose's SQL
        return False


def _finish(statement: str) -> str:
    return statement.strip().rstrip(";").rstrip().rstrip(".").rstrip()


def _scan(sql: str):
    """Yield (index, char) of `sql` outside string literals, quoted identifiers and comments
    (a Markdown fence comes as one "```" item)."""
    i, n = 0, len(sql)
    closing = {"'": "'", '"': '"', "`": "`", "[": "]"}
    while i < n:
        ch = sql[i]
        if sql.startswith("```", i):  # a Markdown fence, not a quoted identifier
            yield i, "```"
            i += 3
        elif ch in closing:
            end = sql.find(closing[ch], i + 1)
            while ch in "'\"`" and end != -1 and sql.startswith(ch, end + 1):  # doubled quote escapes
                end = sql.find(ch, end + 2)
            i = n if end == -1 else end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            if end == -1:
                return
            yield end, "\n"
            i = end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end == -1 else end + 2
        else:
            yield i, ch
            i += 1


def _cut_code(sql: str) -> str:
    """Code mode (inside a fence): the text up to the first ';' outside quotes and comments."""
    for i, ch in _scan(sql):
        if ch == ";":
            return sql[:i]
    return sql


def _cut_prose(sql: str) -> str:
    """Bare mode: also stop at a blank line, a prose line, a closing fence or a sentence end."""
    for i, ch in _scan(sql):
        if ch == ";":
            return sql[:i]
        if ch == "." and _SENTENCE_END.match(sql, i):
            return sql[:i]
        if ch == "```":
            return sql[:i]
        if ch == "\n":
            j = i + 1
            while j < len(sql) and sql[j] in " \t":
                j += 1
            if j == len(sql) or sql[j] == "\n":  # blank line (or end)
                following = _WS_RUN.match(sql, j).end()
                if following == len(sql) or not _CONTINUATION.match(sql, following):
                    return sql[:i]
            elif _PROSE_LINE.match(sql, i + 1):
                return sql[:i]
    return sql
