"""Small things made in code for fast tests: a tiny chat model, tiny databases, tiny MMLU sets."""
from __future__ import annotations

import sqlite3
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "SELECT count(*) FROM singer WHERE age > 20 ORDER BY name LIMIT 3;",
    "CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, age INTEGER, country TEXT);",
    "The following are multiple choice questions (with answers) about high school physics.",
    "Question: How many singers are there? Answer: A. B. C. D. Database schema: Write the SQLite query.",
    "You are a careful data analyst. Given a SQLite database schema and a question, reply with one query.",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 ()*,.;:'\"=<>!?-_/\n",
]


def make_tiny_model_dir(dest: Path, *, seed: int = 0, hidden: int = 64, layers: int = 2) -> Path:
    """A randomly initialised 2-layer Llama with a byte-level BPE tokenizer and a ChatML template.

    Real architecture and tokenizer code paths, ~0.1 M parameters: every stage runs on it in seconds.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    dest.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<|im_end|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(dest)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, bos_token_id=fast.bos_token_id,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(dest)
    return dest


def make_singer_db(path: Path) -> Path:
    """A two-table SQLite database with a foreign key, a few rows of each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE country (country_id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE singer (
            singer_id INTEGER PRIMARY KEY, name TEXT, age INTEGER, country_id INTEGER,
            FOREIGN KEY (country_id) REFERENCES country(country_id));
        INSERT INTO country VALUES (1, 'France'), (2, 'Japan'), (3, 'Peru');
        INSERT INTO singer VALUES (1, 'Ana', 31, 1), (2, 'Bo', 25, 2), (3, 'Cy', 25, 2), (4, 'Di', 40, 3);
        """
    )
    con.commit()
    con.close()
    return path
