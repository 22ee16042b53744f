//! Chapter 4: tokenization, step by step, on GPT-2's and SmolLM2's tokenizers.
//!
//! `cargo run --release --example ch04_tokenizer`
//! The output carries `ANCHOR:` lines so the chapter can include sections
//! by name (`all` is the whole output, the others sit inside it).
//! (GPT-2's files are in the repository; SmolLM2's tokenizer is read from the
//! model's GGUF in the cache: `scripts/fetch-model.sh` fetches it.)

use std::path::PathBuf;

use anyhow::Result;
use model::chat_template::{ChatMessage, ChatTemplate};
use model::gguf::GgufFile;
use model::tokenizer::byte_map::bytes_to_unicode;
use model::tokenizer::{PreTokenizer, PreTokenizerKind, Tokenizer};

fn show_bytes(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn pieces(tok: &Tokenizer, ids: &[u32]) -> String {
    ids.iter()
        .map(|&id| format!("{:?}", String::from_utf8_lossy(tok.token_bytes(id))))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let gpt2_dir = root.join("tests/fixtures/gpt2-tokenizer");
    let gpt2 =
        Tokenizer::from_vocab_merges(gpt2_dir.join("encoder.json"), gpt2_dir.join("vocab.bpe"))?;
    let gguf = GgufFile::open(model::model_path::find_default_model()?)?;
    let smol = Tokenizer::from_gguf(&gguf)?;

    println!("ANCHOR: all");
    println!("== 1. Bytes and the byte map");
    let map = bytes_to_unicode();
    for b in [b'a', b' ', b'\n', 0xC3, 0xA9] {
        println!(
            "byte {b:#04X} is written {:?} in the vocabulary",
            map[b as usize]
        );
    }
    println!(
        "GPT-2: {} ids, {} merges; SmolLM2: {} ids, {} merges",
        gpt2.vocab_size(),
        gpt2.merges_len(),
        smol.vocab_size(),
        smol.merges_len()
    );
    println!(
        "SmolLM2 has no piece for {} of the 256 bytes: {}",
        smol.unencodable_bytes().len(),
        show_bytes(&smol.unencodable_bytes())
    );

    println!("\n== 2. Merges, lowest rank first");
    println!("ANCHOR: merges");
    for (tok, name) in [(&gpt2, "GPT-2"), (&smol, "SmolLM2")] {
        println!("{name}, pre-token \" tokenization\":");
        for (rank, ids) in tok.merge_steps(" tokenization") {
            let rank = rank.map_or("start".to_string(), |r| format!("rank {r:>5}"));
            println!("  {rank:>10}: {}", pieces(tok, &ids));
        }
    }

    println!("ANCHOR_END: merges");

    println!("\n== 3. Pre-tokenization");
    println!("ANCHOR: pretokenize");
    let text = "I'm  learning 2024's tokenizers!";
    for kind in [PreTokenizerKind::Gpt2, PreTokenizerKind::DigitsThenGpt2] {
        println!("{kind:?}: {:?}", PreTokenizer::new(kind).split(text));
    }
    let ids = gpt2.encode(text);
    println!("GPT-2   {} ids: {}", ids.len(), pieces(&gpt2, &ids));
    let ids = smol.encode(text);
    println!("SmolLM2 {} ids: {}", ids.len(), pieces(&smol, &ids));

    println!("ANCHOR_END: pretokenize");

    println!("\n== 4. Special tokens are found before BPE");
    println!("ANCHOR: special");
    let text = "<|im_start|>user\nHi<|im_end|>";
    println!("encode({text:?}) = {:?}", smol.encode(text));
    println!(
        "as ordinary text it is {} ids: {:?}",
        smol.encode_ordinary(text).len(),
        smol.encode_ordinary(text)
    );

    println!("ANCHOR_END: special");

    println!("\n== 5. Half a character must wait");
    println!("ANCHOR: stream");
    let text = "é😀";
    let ids = gpt2.encode(text);
    println!(
        "{text:?} is bytes {} and GPT-2 ids {ids:?}",
        show_bytes(text.as_bytes())
    );
    let mut dec = gpt2.stream_decoder();
    for &id in &ids {
        let out = dec.push(id);
        println!(
            "  push {id:>5} (bytes {:<11}) -> emit {out:?}, holding {}",
            show_bytes(gpt2.token_bytes(id)),
            show_bytes(dec.pending())
        );
    }
    println!(
        "  decoding only the first two ids gives {:?}",
        gpt2.decode(&ids[..2])
    );

    println!("ANCHOR_END: stream");

    println!("\n== 6. The chat template");
    let template = ChatTemplate::from_gguf(&gguf)?;
    let msgs = [ChatMessage::new("user", "What is a token?")];
    let prompt = template.render(&msgs, true);
    println!("{prompt}");
    println!(
        "-> {} ids: {:?}",
        smol.encode(&prompt).len(),
        smol.encode(&prompt)
    );

    println!("\n== 7. Characters per token");
    let sample = "The quick brown fox jumps over the lazy dog. In 1969, 600 million people watched the landing.\n\
        fn main() { println!(\"{}\", 40 + 2); }\nCafé, naïve, 日本語, 😀.";
    for (tok, name) in [(&gpt2, "GPT-2"), (&smol, "SmolLM2")] {
        let n = tok.encode(sample).len();
        println!(
            "{name:<8} {n:>3} ids for {} characters ({:.2} characters per id)",
            sample.chars().count(),
            sample.chars().count() as f64 / n as f64
        );
    }
    println!("ANCHOR_END: all");
    Ok(())
}
