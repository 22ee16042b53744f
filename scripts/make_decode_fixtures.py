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
        banned = rng.choice(vocab, size=5, replace=False).tolist()
        case(
            "banned_tokens",
            {"banned_ids": banned},
            lp.SuppressTokensLogitsProcessor(banned),
            logits,
            ids,
            prompt_len,
        )
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


def random_boxes(rng, n):
    cx, cy = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
    w, h = rng.uniform(1, 30, n), rng.uniform(1, 30, n)
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    # Degenerate boxes: a few zero-width / zero-height ones and exact duplicates.
    boxes[:10, 2] = boxes[:10, 0]
    boxes[10:20, 3] = boxes[10:20, 1]
    boxes[20:30] = boxes[30:40]
    return boxes


def soft_nms_reference(boxes, scores, method, param, score_threshold):
    """Soft-NMS as in Bodla et al. 2017, Algorithm 1 (numpy, float32 IoU)."""
    s = scores.astype(np.float32).copy()
    alive = [i for i in range(len(s)) if s[i] >= score_threshold]
    out = []
    while alive:
        m = max(alive, key=lambda i: (s[i], -i))
        alive.remove(m)
        out.append([m, float(s[m])])
        for j in alive:
            a, b = boxes[m], boxes[j]
            w = max(np.float32(0), min(a[2], b[2]) - max(a[0], b[0]))
            h = max(np.float32(0), min(a[3], b[3]) - max(a[1], b[1]))
            inter = np.float32(w * h)
            union = np.float32((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
            o = np.float32(0) if union <= 0 else np.float32(inter / union)
            if method == "linear":
                f = np.float32(1) - o if o > param else np.float32(1)
            else:
                f = np.float32(np.exp(-(o * o) / np.float32(param)))
            s[j] = np.float32(s[j] * f)
        alive = [j for j in alive if s[j] >= score_threshold]
    return out


def nms_fixtures():
    from torchvision.ops import batched_nms, nms

    rng = np.random.default_rng(7)
    n = 1200
    boxes = random_boxes(rng, n)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    classes = rng.integers(0, 5, n)
    tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
    out = {
        "source": "torchvision.ops.nms / batched_nms; soft-NMS per Bodla et al. 2017",
        "boxes": [r7(b.tolist()) for b in boxes],
        "scores": r7(scores.tolist()),
        "classes": classes.tolist(),
        "nms": [],
        "batched_nms": [],
        "soft_nms": [],
    }
    for thr in [0.3, 0.5, 0.7]:
        out["nms"].append({"iou_threshold": thr, "keep": nms(tb, ts, thr).tolist()})
        out["batched_nms"].append(
            {"iou_threshold": thr, "keep": batched_nms(tb, ts, torch.from_numpy(classes), thr).tolist()}
        )
    m = 300
    for method, param in [("linear", 0.3), ("gaussian", 0.5)]:
        res = soft_nms_reference(boxes[:m], scores[:m], method, param, 0.001)
        out["soft_nms"].append({"n": m, "method": method, "param": param, "score_threshold": 0.001, "keep": res})
    write("nms.json", out)


def calibration_fixtures():
    from scipy.optimize import minimize_scalar
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(11)
    n, c = 2000, 5
    labels = rng.integers(0, c, n)
    logits = rng.normal(0, 1, (n, c))
    logits[np.arange(n), labels] += 1.2
    logits = (logits * 2.5).astype(np.float32)  # over-confident on purpose
    z = torch.from_numpy(logits).double()
    y = torch.from_numpy(labels)

    def nll(t):
        return torch.nn.functional.cross_entropy(z / t, y).item()

    res = minimize_scalar(nll, bounds=(0.01, 100.0), method="bounded", options={"xatol": 1e-10})

    def ece(t, n_bins=15):
        # As gpleiss/temperature_scaling `_ECELoss`: bins (lower, upper].
        probs = torch.softmax(z / t, dim=1)
        conf, pred = probs.max(1)
        acc = pred.eq(y)
        bounds = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
        e = torch.zeros(1, dtype=torch.float64)
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            inb = conf.gt(lo.item()) * conf.le(hi.item())
            prop = inb.double().mean()
            if prop.item() > 0:
                e += torch.abs(conf[inb].mean() - acc[inb].double().mean()) * prop
        return e.item()

    yb = rng.random(1500) < 0.4
    pb = 1 / (1 + np.exp(-(rng.normal(0, 1.5, 1500) + 1.0 * yb - 0.4)))
    prob_true, prob_pred = calibration_curve(yb, pb, n_bins=10, strategy="uniform")
    write(
        "calibration.json",
        {
            "source": "scipy minimize_scalar on torch cross_entropy; gpleiss-style ECE; sklearn calibration_curve",
            "logits": [r7(r.tolist()) for r in logits],
            "labels": labels.tolist(),
            "temperature": res.x,
            "nll_at_1": nll(1.0),
            "nll_at_t": nll(res.x),
            "ece15_at_1": ece(1.0),
            "ece15_at_t": ece(res.x),
            "binary_y": yb.astype(int).tolist(),
            "binary_p": pb.tolist(),
            "curve_n_bins": 10,
            "prob_true": prob_true.tolist(),
            "prob_pred": prob_pred.tolist(),
        },
    )


def threshold_fixtures():
    from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

    rng = np.random.default_rng(5)
    cases = []
    for n, decimals in [(400, 2), (1000, 6), (50, 1)]:
        y = rng.random(n) < 0.3
        s = np.round(1 / (1 + np.exp(-(rng.normal(0, 1, n) + 1.5 * y))), decimals)
        p, r, t = precision_recall_curve(y, s)
        fpr, tpr, rt = roc_curve(y, s)
        f1 = np.where(p[:-1] + r[:-1] > 0, 2 * p[:-1] * r[:-1] / np.maximum(p[:-1] + r[:-1], 1e-300), 0)
        best = int(np.argmax(f1))
        rec_ok = np.nonzero(r[:-1] >= 0.8)[0]
        prec_ok = np.nonzero(p[:-1] >= 0.7)[0]
        cases.append(
            {
                "y": y.astype(int).tolist(),
                "scores": s.tolist(),
                "precision": p.tolist(),
                "recall": r.tolist(),
                "thresholds": t.tolist(),
                "fpr": fpr.tolist(),
                "tpr": tpr.tolist(),
                "roc_thresholds": ["inf" if np.isinf(v) else v for v in rt.tolist()],
                "auc": roc_auc_score(y, s),
                "best_f1_threshold": float(t[best]),
                "best_f1": float(f1[best]),
                "recall_0_8_threshold": float(t[rec_ok[-1]]) if len(rec_ok) else None,
                "precision_0_7_threshold": float(t[prec_ok[0]]) if len(prec_ok) else None,
            }
        )
    write("thresholds.json", {"source": "sklearn.metrics precision_recall_curve / roc_curve / roc_auc_score", "cases": cases})


def main():
    torch.manual_seed(0)
    processors()
    beam_gpt2()
    nms_fixtures()
    calibration_fixtures()
    threshold_fixtures()


if __name__ == "__main__":
    main()
