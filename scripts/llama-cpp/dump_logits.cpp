// Reference logits and greedy continuations from llama.cpp, for the
// quantized-path parity fixtures (tests/fixtures/llama-cpp/). Attention
// runs without flash attention over an f32 KV cache (see below).
//
// Built and run by scripts/make_llama_cpp_fixtures.sh against the llama.cpp
// that scripts/bench-vs-llama-cpp.sh builds (0c1e570). For each prompt
// (one per line on stdin) it prints one JSON object per line: the prompt's
// token ids (tokenized by llama.cpp, special tokens as the GGUF says), the
// last position's logits at every `stride`-th vocabulary id plus the top 32,
// and `n_greedy` greedy tokens decoded one at a time.
//
//   dump_logits MODEL.gguf N_GREEDY STRIDE THREADS < prompts.txt
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "llama.h"

static void print_ids(const std::vector<llama_token> & v) {
    printf("[");
    for (size_t i = 0; i < v.size(); ++i) printf(i ? ",%d" : "%d", v[i]);
    printf("]");
}

int main(int argc, char ** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL N_GREEDY STRIDE THREADS < prompts\n", argv[0]);
        return 2;
    }
    const int n_greedy = atoi(argv[2]);
    const int stride = atoi(argv[3]);
    const int threads = atoi(argv[4]);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) return 1;
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    std::string line;
    while (std::getline(std::cin, line)) {
        if (line.empty()) continue;
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = 512;
        cp.n_batch = 512;
        cp.n_threads = threads;
        cp.n_threads_batch = threads;
        // Plain attention over an f32 cache: llama.cpp's flash-attention
        // kernel accumulates values in f16, noise that would hide what the
        // fixture is for (the quantized matrix products).
        cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
        cp.type_k = GGML_TYPE_F32;
        cp.type_v = GGML_TYPE_F32;
        llama_context * ctx = llama_init_from_model(model, cp);
        int n = -llama_tokenize(vocab, line.c_str(), line.size(), nullptr, 0, true, true);
        std::vector<llama_token> toks(n);
        llama_tokenize(vocab, line.c_str(), line.size(), toks.data(), n, true, true);
        std::vector<llama_token> prompt = toks;
        if (llama_decode(ctx, llama_batch_get_one(toks.data(), toks.size()))) return 1;
        const float * lg = llama_get_logits_ith(ctx, -1);
        std::vector<float> last(lg, lg + n_vocab);
        std::vector<llama_token> greedy;
        for (int i = 0; i < n_greedy; ++i) {
            const float * l = llama_get_logits_ith(ctx, -1);
            llama_token t = std::max_element(l, l + n_vocab) - l;
            greedy.push_back(t);
            if (llama_decode(ctx, llama_batch_get_one(&greedy.back(), 1))) return 1;
        }
        std::vector<int> order(n_vocab);
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + 32, order.end(),
                          [&](int a, int b) { return last[a] > last[b]; });
        printf("{\"ids\":");
        print_ids(prompt);
        printf(",\"greedy\":");
        print_ids(greedy);
        printf(",\"top\":[");
        for (int i = 0; i < 32; ++i) printf(i ? ",[%d,%.6f]" : "[%d,%.6f]", order[i], last[order[i]]);
        printf("],\"sampled\":[");
        bool first = true;
        for (int i = 0; i < n_vocab; i += stride) {
            printf(first ? "[%d,%.6f]" : ",[%d,%.6f]", i, last[i]);
            first = false;
        }
        printf("]}\n");
        fflush(stdout);
        llama_free(ctx);
    }
    llama_model_free(model);
    return 0;
}
