// Verilator C++ harness of the whole bitmill accelerator on the exact-latency memory model
// (see bitmill/sim/cosim/rtlsim.py). Usage:
//   rtlsim IMAGE_HEX WORDS PROG_ADDR PROG_COUNT TRACE FINAL_HEX MAX_CYCLES
// The memory model's storage starts with the WORDS words of IMAGE_HEX ($readmemh, through the
// plusargs of bitmill_sram); the harness writes PROG_ADDR, PROG_COUNT, MEM_BYTES and
// CTRL.START through the AXI4-Lite host port like a driver, runs until the program ends (or
// MAX_CYCLES), writes every instruction start/finish to TRACE (u32 index, u32 kind 0 start /
// 1 finish, u64 cycle from the first running cycle), reads the registers back through the
// host port, lets the model write its first WORDS words to FINAL_HEX ($writememh at the end of
// the simulation) and prints one JSON line. Progress ("rtlsim: N cycles") goes to stderr. Built
// with -DBEAT_BYTES, -DPOR_CYCLES, -DPROGRESS_CYCLES and the register offsets -DREG_<NAME>.
#include "Vtop.h"
#include "verilated.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

// Verilator escapes the "__" of the emitted interface port names.
#define H(name) host___05F##name
#define T(name) trace___05F##name

namespace {

uint64_t edges = 0;

inline void tick(Vtop* top) {
    top->clk = 1;
    top->eval();
    top->clk = 0;
    top->eval();
    ++edges;
}

void host_write(Vtop* top, uint32_t addr, uint32_t value) {
    top->H(awaddr) = addr;
    top->H(wdata) = value;
    top->H(wstrb) = 0xf;
    top->H(awvalid) = 1;
    top->H(wvalid) = 1;
    top->H(bready) = 1;
    bool aw = false, w = false;
    while (!(aw && w)) {
        top->eval();
        bool aw_now = top->H(awready), w_now = top->H(wready);
        tick(top);
        if (aw_now) { aw = true; top->H(awvalid) = 0; }
        if (w_now) { w = true; top->H(wvalid) = 0; }
    }
    top->eval();
    while (!top->H(bvalid)) { tick(top); top->eval(); }
    tick(top);
    top->H(bready) = 0;
}

uint32_t host_read(Vtop* top, uint32_t addr) {
    top->H(araddr) = addr;
    top->H(arvalid) = 1;
    top->H(rready) = 1;
    top->eval();
    while (!top->H(arready)) { tick(top); top->eval(); }
    tick(top);
    top->H(arvalid) = 0;
    top->eval();
    while (!top->H(rvalid)) { tick(top); top->eval(); }
    uint32_t value = top->H(rdata);
    tick(top);
    top->H(rready) = 0;
    return value;
}

struct Event {
    uint32_t index, kind;
    uint64_t cycle;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 8) {
        std::fprintf(stderr, "usage: %s IMAGE_HEX WORDS PROG_ADDR PROG_COUNT TRACE FINAL_HEX MAX_CYCLES\n",
                     argv[0]);
        return 2;
    }
    const uint64_t words = std::strtoull(argv[2], nullptr, 0);
    const uint32_t prog_addr = std::strtoul(argv[3], nullptr, 0);
    const uint32_t prog_count = std::strtoul(argv[4], nullptr, 0);
    const uint64_t max_cycles = std::strtoull(argv[7], nullptr, 0);
    const std::string load = std::string("+bitmill_sram_load=") + argv[1];
    const std::string dump = std::string("+bitmill_sram_dump=") + argv[6];
    const std::string count = "+bitmill_sram_words=" + std::to_string(words);
    const char* plusargs[] = {argv[0], load.c_str(), dump.c_str(), count.c_str()};

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(4, plusargs);
    auto top = std::make_unique<Vtop>(ctx.get());
    top->clk = 0;
    top->eval();
    for (int i = 0; i < POR_CYCLES + 1; ++i) tick(top.get());     // power-on reset
    host_write(top.get(), REG_PROG_ADDR, prog_addr);
    host_write(top.get(), REG_PROG_COUNT, prog_count);
    host_write(top.get(), REG_MEM_BYTES, words * BEAT_BYTES);
    host_write(top.get(), REG_CTRL, 1);

    std::vector<Event> events;
    events.reserve(2 * prog_count + 8);
    auto t0 = std::chrono::steady_clock::now();
    uint64_t cycle = 0;
    bool started = false, stopped = false;
    top->eval();
    for (uint64_t n = 0; n < max_cycles + 64; ++n) {      // outputs settled by the last tick
        if (!started && top->running) started = true;
        if (started) {
            if (!top->running) { stopped = true; break; }
            const uint32_t s = top->T(start), f = top->T(finish);
            for (int q = 0; q < 3; ++q) {
                const uint32_t index = (top->T(index) >> (16 * q)) & 0xffff;
                if (s >> q & 1) events.push_back({index, 0, cycle});
                if (f >> q & 1) events.push_back({uint32_t(q), 1, cycle});
            }
            ++cycle;
            if (cycle % PROGRESS_CYCLES == 0)
                std::fprintf(stderr, "rtlsim: %llu cycles\n", static_cast<unsigned long long>(cycle));
            if (cycle > max_cycles) break;
        }
        tick(top.get());
    }
    auto t1 = std::chrono::steady_clock::now();

    uint32_t regs[6];
    const uint32_t offsets[6] = {REG_STATUS, REG_ERROR, REG_ERROR_INSTR, REG_CYCLES_LO, REG_CYCLES_HI, REG_RETIRED};
    for (int i = 0; i < 6; ++i) regs[i] = host_read(top.get(), offsets[i]);
    top->final();                                        // FINAL_HEX written here

    FILE* f = std::fopen(argv[5], "wb");
    if (!f) { std::fprintf(stderr, "cannot write %s\n", argv[5]); return 2; }
    for (const Event& e : events) {
        std::fwrite(&e.index, 4, 1, f);
        std::fwrite(&e.kind, 4, 1, f);
        std::fwrite(&e.cycle, 8, 1, f);
    }
    std::fclose(f);
    std::printf("{\"stopped\": %s, \"cycles\": %llu, \"edges\": %llu, \"wall_s\": %.6f, \"status\": %u, "
                "\"error\": %u, \"error_instr\": %u, \"cycles_reg\": %llu, \"retired\": %u}\n",
                stopped ? "true" : "false", static_cast<unsigned long long>(cycle),
                static_cast<unsigned long long>(edges), std::chrono::duration<double>(t1 - t0).count(),
                regs[0], regs[1], regs[2],
                static_cast<unsigned long long>(regs[3]) | (static_cast<unsigned long long>(regs[4]) << 32),
                regs[5]);
    return 0;
}
