//! Step 2: softmax and log-softmax against PyTorch
//! (`engine/tests/fixtures/engine_ops.json`).

use exercises::step2_softmax::{log_softmax, softmax};
use exercises::support::{assert_close, engine_ops, tensor};

/// The fixture's input rows, each shifted by `shift`, through `f`.
fn rows(f: fn(&mut [f32]), shift: f32) -> Vec<f32> {
    let (mut x, shape) = tensor(&engine_ops()["softmax"]["x"]);
    for row in x.chunks_mut(shape[shape.len() - 1]) {
        row.iter_mut().for_each(|v| *v += shift);
        f(row);
    }
    x
}

#[test]
fn softmax_matches_torch() {
    let (want, _) = tensor(&engine_ops()["softmax"]["out"]);
    // Tolerance: 1e-7 absolute + 1e-5 relative, as the engine's own check.
    assert_close("softmax", &rows(softmax, 0.0), &want, 1e-7, 1e-5);
}

#[test]
fn softmax_of_large_logits_matches_torch() {
    // Softmax does not change when every logit moves by the same amount,
    // so PyTorch's output is also the answer for the rows plus 1000 — where
    // exp without the max subtracted overflows.
    let (want, _) = tensor(&engine_ops()["softmax"]["out"]);
    // Tolerance: 1e-7 absolute + 1e-4 relative (x + 1000 keeps only about
    // 4 decimals of x in f32).
    assert_close(
        "softmax of x + 1000",
        &rows(softmax, 1000.0),
        &want,
        1e-7,
        1e-4,
    );
}

#[test]
fn log_softmax_matches_torch() {
    let (want, _) = tensor(&engine_ops()["log_softmax"]["out"]);
    // Log-probabilities down to about -60: 1e-5 absolute + 1e-5 relative.
    assert_close("log_softmax", &rows(log_softmax, 0.0), &want, 1e-5, 1e-5);
}
