// Verilator C++ harness of the bitmill tile engine (see bitmill/sim/cosim/harness.py).
// Usage: harness STIMULUS RESULTS. Prints one JSON line: {"cycles": N, "wall_s": S,
// "compute_s": T} (T: the part of S spent between command acceptance and done).
// Built with -DROWS, -DCOLS, -DLOAD_WORDS (u32 words of the load payload), -DRES_LATENCY.
#include "Vtop.h"
#include "verilated.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <type_traits>
#include <vector>

// Verilator escapes the "__" of the emitted stream port names.
#define LOAD_VALID load___05Fvalid
#define LOAD_PAYLOAD load___05Fpayload
#define CMD_VALID cmd___05Fvalid
#define CMD_PAYLOAD cmd___05Fpayload
#define CMD_READY cmd___05Fready

namespace {

uint64_t cycles = 0;

inline void tick(Vtop* top) {
    top->clk = 1;
    top->eval();
    top->clk = 0;
    top->eval();
    ++cycles;
}

// A port of any width from u32 words (narrow ports are integers, wide ones VlWide).
template <typename Port>
inline void set_words(Port& port, const uint32_t* w) {
    if constexpr (std::is_integral_v<Port>) {
        uint64_t v = w[0];
        if constexpr (sizeof(Port) > 4) v |= static_cast<uint64_t>(w[1]) << 32;
        port = static_cast<Port>(v);
    } else {
        for (int i = 0; i < LOAD_WORDS; ++i) port[i] = w[i];
    }
}

bool read_all(const char* path, std::vector<uint32_t>& out) {
    FILE* f = std::fopen(path, "rb");
    if (!f) return false;
    std::fseek(f, 0, SEEK_END);
    long size = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    out.resize(size / 4);
    bool ok = std::fread(out.data(), 4, out.size(), f) == out.size();
    std::fclose(f);
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s STIMULUS RESULTS\n", argv[0]);
        return 2;
    }
    std::vector<uint32_t> stim;
    if (!read_all(argv[1], stim) || stim.empty()) {
        std::fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    const uint32_t n_tiles = stim[0];
    std::vector<uint64_t> results;
    results.reserve(static_cast<size_t>(n_tiles) * (1 + ROWS * COLS));

    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vtop>(ctx.get());
    top->clk = 0;
    top->rst = 1;
    top->LOAD_VALID = 0;
    top->CMD_VALID = 0;
    top->res_addr = 0;
    top->eval();

    auto t0 = std::chrono::steady_clock::now();
    tick(top.get());
    tick(top.get());
    top->rst = 0;
    size_t pos = 1;
    double compute_s = 0;                                // wall time of the tile runs only
    for (uint32_t t = 0; t < n_tiles; ++t) {
        const uint32_t n_loads = stim[pos++];
        const uint32_t cmd = stim[pos++];
        top->LOAD_VALID = 1;                            // one buffer word per cycle
        for (uint32_t l = 0; l < n_loads; ++l, pos += LOAD_WORDS) {
            set_words(top->LOAD_PAYLOAD, &stim[pos]);
            tick(top.get());
        }
        top->LOAD_VALID = 0;
        top->CMD_PAYLOAD = cmd;                         // issue; accepted at a ready edge
        top->CMD_VALID = 1;
        while (!top->CMD_READY) tick(top.get());
        tick(top.get());
        top->CMD_VALID = 0;
        uint64_t tile_cycles = 0;                        // edges after acceptance to done
        auto c0 = std::chrono::steady_clock::now();
        while (!top->done) {
            tick(top.get());
            ++tile_cycles;
            if (tile_cycles > (1u << 24)) {
                std::fprintf(stderr, "tile %u: no done\n", t);
                return 1;
            }
        }
        compute_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
        results.push_back(tile_cycles);
        for (int n = 0; n < ROWS * COLS; ++n) {          // pipelined read port
            top->res_addr = n;
            for (int k = 0; k < RES_LATENCY; ++k) tick(top.get());
            results.push_back(static_cast<uint64_t>(top->res_data));
        }
    }
    auto t1 = std::chrono::steady_clock::now();
    top->final();

    FILE* f = std::fopen(argv[2], "wb");
    if (!f || std::fwrite(results.data(), 8, results.size(), f) != results.size()) {
        std::fprintf(stderr, "cannot write %s\n", argv[2]);
        return 2;
    }
    std::fclose(f);
    std::printf("{\"cycles\": %llu, \"wall_s\": %.6f, \"compute_s\": %.6f}\n",
                static_cast<unsigned long long>(cycles),
                std::chrono::duration<double>(t1 - t0).count(), compute_s);
    return 0;
}
