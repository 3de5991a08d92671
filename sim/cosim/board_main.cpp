// Verilator C++ harness of a bitmill board core (see bitmill/sim/cosim/board_sim.py): the
// board's UART pins joined to a pseudo-terminal, so host software talks to the simulated board
// through a serial port as it would to a real one. Usage:
//   board_sim
// Prints the pseudo-terminal's path on the first line of stdout, then simulates until stdin
// closes. Bytes the host writes to the terminal enter the uart_rx pin as 8N1 frames of DIVISOR
// cycles per bit, back to back; frames on the uart_tx pin are decoded (sampled mid-bit) and
// written to the terminal. On exit prints one line: cycles simulated and wall seconds. Built
// with -DDIVISOR and -DPOR_CYCLES.
#include "Vtop.h"
#include "verilated.h"

#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <memory>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

namespace {

constexpr int BITS = 10;                 // start, 8 data, stop
constexpr uint64_t POLL_EVERY = 64;      // cycles between checks of the terminal and stdin

inline void tick(Vtop* top) {
    top->clk = 1;
    top->eval();
    top->clk = 0;
    top->eval();
}

int open_terminal() {
    int fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (fd < 0 || grantpt(fd) != 0 || unlockpt(fd) != 0) return -1;
    termios t{};
    if (tcgetattr(fd, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(fd, TCSANOW, &t);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

struct Sender {                          // host -> uart_rx
    uint16_t frame = 0;
    int bit = 0;                         // bits left of the frame being sent
    int timer = 0;
    bool busy() const { return bit > 0; }
    void load(uint8_t b) { frame = uint16_t(0x200 | (b << 1)); bit = BITS; timer = DIVISOR; }
    int line() const { return busy() ? (frame >> (BITS - bit)) & 1 : 1; }
    void step() {
        if (busy() && --timer == 0) { --bit; timer = DIVISOR; }
    }
};

struct Receiver {                        // uart_tx -> host
    int state = -1;                      // -1 idle, else bits sampled so far
    int timer = 0;
    uint16_t frame = 0;
    bool step(int line, uint8_t& out) {
        if (state < 0) {
            if (!line) { state = 0; timer = DIVISOR / 2; frame = 0; }
            return false;
        }
        if (--timer > 0) return false;
        frame |= uint16_t(line) << state;
        ++state;
        timer = DIVISOR;
        if (state < BITS) return false;
        state = -1;
        out = uint8_t(frame >> 1);
        return (frame >> 9) & 1;         // a frame with a low stop bit is dropped
    }
};

}  // namespace

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    int pty = open_terminal();
    if (pty < 0) {
        std::fprintf(stderr, "cannot open a pseudo-terminal\n");
        return 2;
    }
    // keep the terminal's other end open here, so that the host closing it is not a hang-up
    int keep = open(ptsname(pty), O_RDWR | O_NOCTTY);
    std::printf("%s\n", ptsname(pty));
    std::fflush(stdout);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);

    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vtop>(ctx.get());
    top->clk = 0;
    top->uart_rx = 1;
    top->eval();
    for (int i = 0; i < POR_CYCLES + 1; ++i) tick(top.get());     // power-on reset

    Sender tx;
    Receiver rx;
    uint8_t inbuf[4096];
    size_t in_len = 0, in_pos = 0;
    uint64_t cycle = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (;; ++cycle) {
        if (cycle % POLL_EVERY == 0) {
            if (in_pos == in_len) {
                ssize_t n = read(pty, inbuf, sizeof inbuf);
                in_pos = 0;
                in_len = n > 0 ? size_t(n) : 0;
            }
            char c;
            ssize_t s = read(0, &c, 1);
            if (s == 0 || (s < 0 && errno != EAGAIN)) break;     // stdin closed: done
        }
        if (!tx.busy() && in_pos < in_len) tx.load(inbuf[in_pos++]);
        top->uart_rx = tx.line();
        tick(top.get());
        tx.step();
        uint8_t b;
        if (rx.step(top->uart_tx, b)) {
            while (write(pty, &b, 1) < 0 && errno == EAGAIN) {
                pollfd p{pty, POLLOUT, 0};
                poll(&p, 1, 10);
            }
        }
    }
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    top->final();
    close(keep);
    close(pty);
    std::printf("{\"cycles\": %llu, \"wall_s\": %.3f}\n", static_cast<unsigned long long>(cycle), wall);
    return 0;
}
