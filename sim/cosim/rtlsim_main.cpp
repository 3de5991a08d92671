// Verilator C++ harness of the whole bitmill accelerator on the exact-latency memory model
// (see bitmill/sim/cosim/rtlsim.py). Usage:
//   rtlsim IMAGE PROG_ADDR PROG_COUNT TRACE FINAL MAX_CYCLES
// Loads IMAGE into the memory model through its backdoor, writes PROG_ADDR, PROG_COUNT,
// MEM_BYTES and CTRL.START through the AXI4-Lite host port, runs until the program ends
// (or MAX_CYCLES), writes every instruction start/finish to TRACE (u32 index, u32 kind
// 0 start / 1 finish, u64 cycle from the first running cycle), reads the registers back
// through the host port, the memory image through the backdoor into FINAL, and prints one
// JSON line. Progress (cycles so far) goes to stderr. Built with -DBEAT_BYTES and the
// register offsets -DREG_<NAME>.
#include "Vtop.h"
#include "verilated.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <type_traits>
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

template <typename Port>
inline void set_bytes(Port& port, const uint8_t* b) {
    if constexpr (std::is_integral_v<Port>) {
        uint64_t v = 0;
        for (int i = BEAT_BYTES - 1; i >= 0; --i) v = (v << 8) | b[i];
        port = static_cast<Port>(v);
    } else {
        for (int w = 0; w < BEAT_BYTES / 4; ++w)
            port[w] = b[4 * w] | (b[4 * w + 1] << 8) | (b[4 * w + 2] << 16) | (uint32_t(b[4 * w + 3]) << 24);
    }
}

template <typename Port>
inline void get_bytes(const Port& port, uint8_t* b) {
    if constexpr (std::is_integral_v<Port>) {
        uint64_t v = port;
        for (int i = 0; i < BEAT_BYTES; ++i, v >>= 8) b[i] = v & 0xff;
    } else {
        for (int w = 0; w < BEAT_BYTES / 4; ++w)
            for (int i = 0; i < 4; ++i) b[4 * w + i] = (port[w] >> (8 * i)) & 0xff;
    }
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

bool read_file(const char* path, std::vector<uint8_t>& out) {
    FILE* f = std::fopen(path, "rb");
    if (!f) return false;
    std::fseek(f, 0, SEEK_END);
    long size = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    out.resize(size);
    bool ok = std::fread(out.data(), 1, out.size(), f) == out.size();
    std::fclose(f);
    return ok;
}

struct Event {
    uint32_t index, kind;
    uint64_t cycle;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 7) {
        std::fprintf(stderr, "usage: %s IMAGE PROG_ADDR PROG_COUNT TRACE FINAL MAX_CYCLES\n", argv[0]);
        return 2;
    }
    std::vector<uint8_t> image;
    if (!read_file(argv[1], image)) {
        std::fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    const uint32_t prog_addr = std::strtoul(argv[2], nullptr, 0);
    const uint32_t prog_count = std::strtoul(argv[3], nullptr, 0);
    const uint64_t max_cycles = std::strtoull(argv[6], nullptr, 0);
    image.resize((image.size() + BEAT_BYTES - 1) / BEAT_BYTES * BEAT_BYTES, 0);

    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vtop>(ctx.get());
    top->clk = 0;
    top->rst = 1;
    top->eval();
    for (int i = 0; i < 3; ++i) tick(top.get());
    top->rst = 0;
    for (size_t w = 0; w < image.size() / BEAT_BYTES; ++w) {        // memory image, backdoor
        top->bd_addr = w;
        set_bytes(top->bd_wdata, &image[w * BEAT_BYTES]);
        top->bd_we = 1;
        tick(top.get());
    }
    top->bd_we = 0;
    host_write(top.get(), REG_PROG_ADDR, prog_addr);
    host_write(top.get(), REG_PROG_COUNT, prog_count);
    host_write(top.get(), REG_MEM_BYTES, image.size());
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
            if ((cycle & ((1u << 22) - 1)) == 0)
                std::fprintf(stderr, "rtlsim: %llu cycles\n", static_cast<unsigned long long>(cycle));
            if (cycle > max_cycles) break;
        }
        tick(top.get());
    }
    auto t1 = std::chrono::steady_clock::now();

    uint32_t regs[6];
    const uint32_t offsets[6] = {REG_STATUS, REG_ERROR, REG_ERROR_INSTR, REG_CYCLES_LO, REG_CYCLES_HI, REG_RETIRED};
    for (int i = 0; i < 6; ++i) regs[i] = host_read(top.get(), offsets[i]);
    std::vector<uint8_t> final_image(image.size());
    for (size_t w = 0; w < image.size() / BEAT_BYTES; ++w) {
        top->bd_addr = w;
        tick(top.get());
        top->eval();
        get_bytes(top->bd_rdata, &final_image[w * BEAT_BYTES]);
    }
    top->final();

    FILE* f = std::fopen(argv[4], "wb");
    if (!f) { std::fprintf(stderr, "cannot write %s\n", argv[4]); return 2; }
    for (const Event& e : events) {
        std::fwrite(&e.index, 4, 1, f);
        std::fwrite(&e.kind, 4, 1, f);
        std::fwrite(&e.cycle, 8, 1, f);
    }
    std::fclose(f);
    f = std::fopen(argv[5], "wb");
    if (!f || std::fwrite(final_image.data(), 1, final_image.size(), f) != final_image.size()) {
        std::fprintf(stderr, "cannot write %s\n", argv[5]);
        return 2;
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
