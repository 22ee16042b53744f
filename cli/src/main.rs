//! `infer`: the command-line front end of Inference from Scratch.
fn main() {
    println!("infer");
}
