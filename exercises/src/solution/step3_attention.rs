//! Step 3, the reference: `attend_one` in `engine/src/kernels/scalar.rs`
//! (the chapter "The forward pass" includes it), run once per query over
//! the keys that query may see.

/// Causal attention for one head (`q`: `t × head_dim`; `k`, `v`:
/// `s × head_dim`).
pub fn attention_head(q: &[f32], k: &[f32], v: &[f32], head_dim: usize, out: &mut [f32]) {
    let (t, s) = (q.len() / head_dim, k.len() / head_dim);
    let mut scores = Vec::with_capacity(s);
    for (i, (qi, oi)) in q
        .chunks_exact(head_dim)
        .zip(out.chunks_exact_mut(head_dim))
        .enumerate()
    {
        let seen = (s - t + i + 1) * head_dim;
        engine::kernels::scalar::attend_one(qi, &k[..seen], &v[..seen], &mut scores, oi);
    }
}
