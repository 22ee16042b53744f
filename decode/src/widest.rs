//! Vocabulary-long loops compiled for the widest vectors the CPU has.
//!
//! A decode step runs a few passes over every logit (49,152 of them for
//! SmolLM2): the maximum, the exponentials, the temperature's division,
//! the checks between processors. Built for plain x86-64 these loops use
//! SSE2's four lanes; [`widest!`] compiles one body three times (AVX-512,
//! AVX2, plain) and picks at run time. The operations are the same IEEE
//! operations at every width (Rust fuses no multiply-add on its own, and a
//! lane's running sum is the same lane whatever the vector holds), so the
//! results are the same bits.

/// `$vis fn $name($args) -> $ret`, running `$body` (an `#[inline(always)]`
/// function of the same arguments) compiled for AVX-512F when the CPU
/// has it, else for AVX2, else as it is.
macro_rules! widest {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $body:ident) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx512f") {
                    #[target_feature(enable = "avx2,avx512f")]
                    fn avx512($($arg: $ty),*) -> $ret {
                        $body($($arg),*)
                    }
                    // SAFETY: the CPU has AVX-512F and AVX2.
                    return unsafe { avx512($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") {
                    #[target_feature(enable = "avx2")]
                    fn avx2($($arg: $ty),*) -> $ret {
                        $body($($arg),*)
                    }
                    // SAFETY: the CPU has AVX2.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

pub(crate) use widest;
