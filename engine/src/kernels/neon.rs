//! NEON kernels for aarch64: four f32 lanes per instruction. Same shapes as
//! the AVX2 kernels (several accumulators, vector `exp`, scalar tails).
//!
//! Safety contract of each `unsafe fn`: the CPU supports NEON, as checked by
//! [`crate::dispatch`] (every aarch64 Linux CPU does).

use std::arch::aarch64::*;

use super::scalar;

/// Lanes per vector.
const L: usize = 4;

/// Load 4 floats from the start of `s` (which must hold at least 4).
#[inline]
#[target_feature(enable = "neon")]
fn load(s: &[f32]) -> float32x4_t {
    assert!(s.len() >= L);
    // SAFETY: 4 floats are in bounds; vld1q has no alignment requirement
    // beyond that of f32.
    unsafe { vld1q_f32(s.as_ptr()) }
}

/// Store 4 floats to the start of `s` (which must hold at least 4).
#[inline]
#[target_feature(enable = "neon")]
fn store(s: &mut [f32], v: float32x4_t) {
    assert!(s.len() >= L);
    // SAFETY: as in `load`.
    unsafe { vst1q_f32(s.as_mut_ptr(), v) }
}

/// `exp` of 4 lanes (same method and constants as the AVX2 `exp8`).
#[inline]
#[target_feature(enable = "neon")]
fn exp4(x: float32x4_t) -> float32x4_t {
    let underflow = vcltq_f32(x, vdupq_n_f32(-87.336_55));
    let x = vmaxq_f32(
        vminq_f32(x, vdupq_n_f32(88.376_26)),
        vdupq_n_f32(-87.336_55),
    );
    let n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(std::f32::consts::LOG2_E)));
    let r = vfmsq_f32(x, n, vdupq_n_f32(0.693_359_4));
    let r = vfmsq_f32(r, n, vdupq_n_f32(-2.121_944_4e-4));
    let mut p = vdupq_n_f32(1.987_569_1e-4);
    p = vfmaq_f32(vdupq_n_f32(1.398_199_9e-3), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.333_452e-3), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.166_579_6e-2), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.666_666_5e-1), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5), p, r);
    let p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0)), p, vmulq_f32(r, r));
    let e = vshlq_n_s32::<23>(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)));
    let v = vmulq_f32(p, vreinterpretq_f32_s32(e));
    vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(v), underflow))
}

/// Dot product, four accumulators.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 4 * L <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            let o = i + j * L;
            *acc = vfmaq_f32(*acc, load(&a[o..]), load(&b[o..]));
        }
        i += 4 * L;
    }
    while i + L <= n {
        acc[0] = vfmaq_f32(acc[0], load(&a[i..]), load(&b[i..]));
        i += L;
    }
    let s = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
    vaddvq_f32(s) + scalar::dot(&a[i..n], &b[i..n])
}

/// `y += alpha * x`.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let va = vdupq_n_f32(alpha);
    let mut i = 0;
    while i + L <= n {
        let v = vfmaq_f32(load(&y[i..]), va, load(&x[i..]));
        store(&mut y[i..], v);
        i += L;
    }
    scalar::axpy(alpha, &x[i..n], &mut y[i..n]);
}

/// Softmax: max, exp with running sum, scale.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn softmax_inplace(x: &mut [f32]) {
    let mut vmax = vdupq_n_f32(f32::NEG_INFINITY);
    let mut i = 0;
    while i + L <= x.len() {
        vmax = vmaxq_f32(vmax, load(&x[i..]));
        i += L;
    }
    let m = x[i..].iter().copied().fold(vmaxvq_f32(vmax), f32::max);
    let vm = vdupq_n_f32(m);
    let mut acc = vdupq_n_f32(0.0);
    i = 0;
    while i + L <= x.len() {
        let e = exp4(vsubq_f32(load(&x[i..]), vm));
        store(&mut x[i..], e);
        acc = vaddq_f32(acc, e);
        i += L;
    }
    let mut sum = vaddvq_f32(acc);
    for v in &mut x[i..] {
        *v = (*v - m).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// RMSNorm of one row.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn rmsnorm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    // SAFETY: same CPU features as this function.
    let ms = unsafe { dot(x, x) } / x.len() as f32;
    let inv = 1.0 / (ms + eps).sqrt();
    for ((o, xi), wi) in out.iter_mut().zip(x).zip(w) {
        *o = xi * inv * wi;
    }
}

/// LayerNorm of one row (two passes: mean, then variance).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn layernorm(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
    scalar::layernorm(x, w, b, eps, out)
}

/// SiLU in place: `x / (1 + exp(-x))`.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn silu_inplace(x: &mut [f32]) {
    let one = vdupq_n_f32(1.0);
    let mut i = 0;
    while i + L <= x.len() {
        let v = load(&x[i..]);
        let e = exp4(vnegq_f32(v));
        store(&mut x[i..], vdivq_f32(v, vaddq_f32(one, e)));
        i += L;
    }
    scalar::silu_inplace(&mut x[i..]);
}

/// GELU (tanh form) in place as `x / (1 + exp(-2u))`.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn gelu_tanh_inplace(x: &mut [f32]) {
    let one = vdupq_n_f32(1.0);
    let mut i = 0;
    while i + L <= x.len() {
        let v = load(&x[i..]);
        let inner = vfmaq_f32(v, vmulq_n_f32(v, 0.044_715), vmulq_f32(v, v));
        let e = exp4(vmulq_n_f32(inner, -2.0 * scalar::GELU_K));
        store(&mut x[i..], vdivq_f32(v, vaddq_f32(one, e)));
        i += L;
    }
    scalar::gelu_tanh_inplace(&mut x[i..]);
}

/// `x *= y` (the plain loop; the compiler vectorises it).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn mul_inplace(x: &mut [f32], y: &[f32]) {
    scalar::mul_inplace(x, y)
}

/// `out = x · y` (the plain loop; the compiler vectorises it).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn mul_to(out: &mut [f32], x: &[f32], y: &[f32]) {
    scalar::mul_to(out, x, y)
}

/// RoPE rotation of each head by one row's angles (the plain loop; the
/// compiler vectorises it).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn rope_rotate(x: &mut [f32], n_heads: usize, head_dim: usize, cos_sin: &[f32]) {
    scalar::rope_rotate(x, n_heads, head_dim, cos_sin)
}

/// `x += y` (the plain loop; the compiler vectorises it).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn add_inplace(x: &mut [f32], y: &[f32]) {
    scalar::add_inplace(x, y)
}

/// Matrix-vector product, one NEON dot per row.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn matvec(w: &[f32], rows: usize, cols: usize, x: &[f32], out: &mut [f32]) {
    for (r, o) in out.iter_mut().enumerate().take(rows) {
        // SAFETY: same CPU features as this function.
        *o = unsafe { dot(&w[r * cols..(r + 1) * cols], &x[..cols]) };
    }
}
