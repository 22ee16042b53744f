#!/usr/bin/env python3
"""Reference fixtures for the `decode` crate.

Run with the reference virtual environment (torch, transformers, torchvision,
scikit-learn, scipy, numpy), from anywhere:

    python scripts/make_decode_fixtures.py

Writes, under tests/fixtures/decode/ (repository root found from this file):

* processors.json: random logits rows and token histories, and the output of
  Hugging Face's LogitsProcessor of the same name on them (masked = null).
* beam_gpt2.json: `model.generate(num_beams=...)` token ids on the random
  GPT-2 fixtures tests/fixtures/gpt2-tiny-*/ for several widths, length
  penalties and early-stopping modes (needs those fixtures first:
  scripts/make_model_fixtures.py).
* nms.json, calibration.json, thresholds.json: torchvision `nms` /
  `batched_nms`, temperature scaling / ECE / `calibration_curve`, and
  `precision_recall_curve` / `roc_curve` / `roc_auc_score` references.
"""

import json
import math
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "decode"


def r7(xs):
    """Floats to 9 significant digits (round-trips f32); -inf becomes null."""
    return [None if (isinstance(v, float) and math.isinf(v) and v < 0) else float(f"{v:.9g}") for v in xs]


def write(name, obj):
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    path.write_text(json.dumps(obj, separators=(",", ":")) + "\n")
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def processors():
    from transformers.generation import logits_process as lp

    rng = np.random.default_rng(1234)
    vocab = 40
    cases = []

    def case(name, params, proc, logits, ids, prompt_len):
        scores = torch.tensor(np.array([logits], dtype=np.float32))
        input_ids = torch.tensor([ids], dtype=torch.long)
        out = proc(input_ids, scores.clone())[0].tolist()
        cases.append(
            {
                "name": name,
                "params": params,
                "logits": r7([float(x) for x in logits]),
                "ids": ids,
                "prompt_len": prompt_len,
                "expected": r7(out),
            }
        )

    for row in range(6):
        scale = [0.5, 1.0, 2.0, 3.0, 4.0, 6.0][row]
        logits = (rng.standard_normal(vocab) * scale).astype(np.float32).tolist()
        ids = rng.integers(0, vocab, size=12).tolist()
        prompt_len = 5
        for t in [0.3, 0.7, 1.5]:
            case("temperature", {"temperature": t}, lp.TemperatureLogitsWarper(t), logits, ids, prompt_len)
        for k in [1, 5, 17]:
            case("top_k", {"top_k": k}, lp.TopKLogitsWarper(k), logits, ids, prompt_len)
        for p in [0.1, 0.5, 0.8, 0.95]:
            case("top_p", {"top_p": p}, lp.TopPLogitsWarper(p), logits, ids, prompt_len)
        for m in [0.02, 0.1, 0.5]:
            case("min_p", {"min_p": m}, lp.MinPLogitsWarper(m), logits, ids, prompt_len)
        for m in [0.2, 0.5, 0.9]:
            case("typical_p", {"typical_p": m}, lp.TypicalLogitsWarper(m), logits, ids, prompt_len)
        for r in [0.8, 1.3, 2.0]:
            case(
                "repetition_penalty",
                {"repetition_penalty": r},
                lp.RepetitionPenaltyLogitsProcessor(r),
                logits,
                ids,
                prompt_len,
            )
        # A history with repeats so that n-grams are actually banned.
        rep_ids = (ids[:4] * 3)[:11]
        for n in [1, 2, 3]:
            case("no_repeat_ngram", {"no_repeat_ngram": n}, lp.NoRepeatNGramLogitsProcessor(n), logits, rep_ids, 3)
        for mn in [3, 10]:
            case(
                "min_new_tokens",
                {"min_new_tokens": mn, "eos": [0, 7]},
                lp.MinNewTokensLengthLogitsProcessor(prompt_len, mn, [0, 7]),
                logits,
                ids,
                prompt_len,
            )
    write("processors.json", {"source": "transformers LogitsProcessor classes", "cases": cases})


def beam_gpt2():
    from transformers import GPT2LMHeadModel

    out = {"source": "transformers generate(num_beams=...)", "cases": []}
    rng = np.random.default_rng(99)
    settings = [
        # (num_beams, length_penalty, early_stopping, max_new_tokens, num_return_sequences, no_repeat_ngram)
        (2, 1.0, False, 8, 1, 0),
        (3, 1.0, True, 10, 3, 0),
        (4, 0.0, "never", 8, 2, 0),
        (4, 2.0, False, 12, 4, 0),
        (5, -0.5, "never", 6, 1, 0),
        (3, 1.0, False, 10, 2, 2),
    ]
    for name in ["gpt2-tiny-a", "gpt2-tiny-b"]:
        d = ROOT / "tests" / "fixtures" / name
        if not (d / "model.safetensors").exists():
            print(f"skipping beam fixtures for {name}: no model")
            continue
        model = GPT2LMHeadModel.from_pretrained(d, torch_dtype=torch.float32).eval()
        vocab = model.config.vocab_size
        # No implicit EOS from the model's config: each case names its own.
        model.generation_config.eos_token_id = None
        for nb, lpen, es, n, ret, nrng in settings:
            prompt = rng.integers(0, vocab, size=int(rng.integers(2, 7))).tolist()
            eos = []
            # First without EOS; then with EOS = the third token of that best
            # beam, so that hypotheses really do finish early.
            for _ in range(2):
                kwargs = dict(
                    num_beams=nb,
                    length_penalty=lpen,
                    early_stopping=es,
                    max_new_tokens=n,
                    num_return_sequences=ret,
                    do_sample=False,
                    no_repeat_ngram_size=nrng,
                    output_scores=True,
                    return_dict_in_generate=True,
                    pad_token_id=0,
                    eos_token_id=eos if eos else None,
                )
                with torch.no_grad():
                    res = model.generate(torch.tensor([prompt]), **kwargs)
                seqs = res.sequences[:, len(prompt) :].tolist()
                scores = res.sequences_scores.tolist()
                trimmed = []
                for s in seqs:
                    # Drop the padding HF adds after an EOS.
                    if eos and eos[0] in s:
                        s = s[: s.index(eos[0]) + 1]
                    trimmed.append(s)
                out["cases"].append(
                    {
                        "model": name,
                        "prompt": prompt,
                        "num_beams": nb,
                        "length_penalty": lpen,
                        "early_stopping": "never" if es == "never" else bool(es),
                        "max_new_tokens": n,
                        "num_return_sequences": ret,
                        "no_repeat_ngram": nrng,
                        "eos": eos,
                        "sequences": trimmed,
                        "scores": r7(scores),
                    }
                )
                eos = eos or [trimmed[0][min(2, len(trimmed[0]) - 1)]]
    write("beam_gpt2.json", out)


def main():
    torch.manual_seed(0)
    processors()
    beam_gpt2()


if __name__ == "__main__":
    main()
