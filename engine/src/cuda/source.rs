//! The CUDA C kernels (the `.cu` files beside this one) and their
//! compilation with NVRTC at run time, for the GPU in front of the program.
//! Compiling needs only the NVRTC library, not a device, so the tests
//! compile every kernel wherever that library is present.

use cudarc::nvrtc::{CompileOptions, Ptx, compile_ptx_with_opts};

use crate::dtype::DType;
use crate::error::{EngineError, Result};

/// The kernel files, in the order NVRTC reads them as one program: the
/// shared helpers first.
pub const FILES: &[(&str, &str)] = &[
    ("common.cuh", include_str!("kernels/common.cuh")),
    ("elementwise.cu", include_str!("kernels/elementwise.cu")),
    ("norm.cu", include_str!("kernels/norm.cu")),
    ("rope.cu", include_str!("kernels/rope.cu")),
    ("quant.cu", include_str!("kernels/quant.cu")),
    ("attention.cu", include_str!("kernels/attention.cu")),
];

/// Every `extern "C"` kernel the program defines (the names the launchers
/// load).
pub const KERNELS: &[&str] = &[
    "add_inplace_f32",
    "add_bias_rows_f32",
    "swiglu_rows_f32",
    "gelu_tanh_f32",
    "gather_rows_f32",
    "rmsnorm_f32",
    "layernorm_f32",
    "softmax_rows_f32",
    "argmax_rows_f32",
    "rope_angles_f32",
    "rope_rotate_f32",
    "linear_rows",
    "linear_rows_many",
    "linear_swiglu_rows",
    "linear_swiglu_rows_many",
    "embed_rows",
    "dequant_rows",
    "attention_f32",
    "attention_f16",
    "kv_write_f32",
    "kv_write_f16",
];

/// The whole program: every file, each after a `#line` directive so
/// NVRTC's messages name the file and line they come from.
pub fn program() -> String {
    let mut src = String::new();
    for (name, text) in FILES {
        src.push_str(&format!("#line 1 \"{name}\"\n"));
        src.push_str(text);
        src.push('\n');
    }
    src
}

/// True when the NVRTC library can be loaded (it ships with the CUDA
/// toolkit, and with PyTorch's CUDA builds).
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to open the shared library; no NVRTC call is made.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Compile [`program`] to PTX for compute capability `arch` (such as
/// `(9, 0)`), or for NVRTC's default target when `None`.
///
/// # Errors
/// [`EngineError::Device`] when NVRTC is missing, or with its log when a
/// kernel does not compile.
pub fn compile(arch: Option<(i32, i32)>) -> Result<Ptx> {
    compile_source(&program(), arch)
}

fn compile_source(src: &str, arch: Option<(i32, i32)>) -> Result<Ptx> {
    if !nvrtc_present() {
        return Err(EngineError::Device(
            "cannot compile the CUDA kernels: the NVRTC library (libnvrtc) is not present".into(),
        ));
    }
    let mut options = vec!["--std=c++17".to_string()];
    if let Some((major, minor)) = arch {
        options.push(format!("--gpu-architecture=compute_{major}{minor}"));
    }
    let opts = CompileOptions {
        options,
        name: Some("engine_kernels.cu".into()),
        ..Default::default()
    };
    compile_ptx_with_opts(src, opts).map_err(|e| match e {
        cudarc::nvrtc::CompileError::CompileError { log, .. } => EngineError::Device(format!(
            "NVRTC could not compile the CUDA kernels:\n{}",
            log.to_string_lossy()
        )),
        other => EngineError::Device(format!("NVRTC failed: {other}")),
    })
}

/// The code `quant.cu` knows a weight's element type by (its `DT_*`
/// constants).
pub fn dtype_code(dtype: DType) -> i32 {
    match dtype {
        DType::F32 => 0,
        DType::F16 => 1,
        DType::BF16 => 2,
        DType::Q8_0 => 3,
        DType::Q4_0 => 4,
        DType::Q4_1 => 5,
        DType::Q5_0 => 6,
        DType::Q4_K => 7,
        DType::Q6_K => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel compiles (no device needed, only NVRTC) and defines the
    /// entry points the launchers load.
    #[test]
    fn kernels_compile_with_nvrtc() {
        if !nvrtc_present() {
            eprintln!(
                "skipped: the NVRTC library is not present here (scripts/check-cuda-kernels.sh \
                 installs it and runs this test)"
            );
            return;
        }
        let ptx = match compile(Some((8, 0))) {
            Ok(p) => p.to_src(),
            Err(e) => panic!("{e}"),
        };
        // scripts/check-cuda-kernels.sh assembles this PTX with ptxas.
        if let Some(path) = std::env::var_os("INFER_PTX_OUT")
            && let Err(e) = std::fs::write(&path, &ptx)
        {
            panic!("writing the PTX to {path:?}: {e}");
        }
        for name in KERNELS {
            assert!(
                ptx.contains(&format!(".entry {name}(")),
                "kernel {name} missing from the PTX"
            );
        }
        let defined = ptx.matches(".entry ").count();
        assert_eq!(defined, KERNELS.len(), "KERNELS lists every entry point");
    }

    /// A broken kernel comes back as an error that quotes NVRTC's log.
    #[test]
    fn compile_errors_carry_the_log() {
        if !nvrtc_present() {
            eprintln!("skipped: the NVRTC library is not present here");
            return;
        }
        let err = compile_source("extern \"C\" __global__ void f() { nope; }", None);
        let Err(EngineError::Device(msg)) = err else {
            panic!("a kernel that names an undefined identifier compiled: {err:?}");
        };
        assert!(msg.contains("nope"), "the log is quoted: {msg}");
    }
}
