"""A transfer of ``total`` full-width beats from an aligned address, split into AXI4 INCR
bursts (`bitmill.hw.axi`): each as long as the rules allow (at most `MAX_BURST_BEATS`, never
past a `BURST_BOUNDARY`), one address handshake per cycle.

`first_burst` forms, in every cycle, what the first burst of a transfer needs from its
address and length (so that a transfer can start from registers the cycle after they were
presented), `first_burst_of_bytes` the same from a byte address and count (the DMA engines'
commands); `issue_bursts` drives the address channel from them.
"""

from __future__ import annotations

from amaranth import C, Cat, Module, Mux, Signal, Value, signed

from bitmill.hw.axi import BURST_BOUNDARY, BURST_INCR, MAX_BURST_BEATS


def first_burst(m: Module, addr, total, lg: int, ch: str) -> dict:
    """The registers `issue_bursts` starts from, formed from the command in every cycle (so
    they hold the command of the cycle before ``start``): ``total`` beats from aligned byte
    address ``addr``, the first burst's ``beats`` (at most `MAX_BURST_BEATS`, never past the
    next `BURST_BOUNDARY`), the beats ``room`` to that boundary, and the differences the
    issuer compares (``left_m_cap``, ``left_m_page``, ``room_m_cap``)."""
    room = _room(m, addr[:12], lg, ch)
    return _plan(m, ch, lg, addr[:12], total, room, total < room, total < MAX_BURST_BEATS,
                 total - MAX_BURST_BEATS, total - (BURST_BOUNDARY >> lg))


def first_burst_of_bytes(m: Module, addr, nbytes, lg: int, ch: str) -> dict:
    """`first_burst`'s registers for the beats covering ``nbytes`` bytes from byte address
    ``addr`` (any alignment): ``ceil((addr % B + nbytes) / B)`` beats from the aligned
    address, ``B = 2**lg``. Every comparison and difference is formed from ``nbytes`` and
    the address's bits in one step (no adder forms the beats before them): with
    ``x = addr % B + nbytes + B - 1`` the beats are ``x >> lg``, ``beats < room`` is
    ``nbytes + addr % BURST_BOUNDARY <= BURST_BOUNDARY - B`` and ``beats - c`` is
    ``(x - c * B) >> lg``."""
    b = 1 << lg
    low = addr[:lg] if lg else C(0, 1)
    aligned = Cat(C(0, lg), addr[lg:12]) if lg else addr[:12]      # in its 4 KiB page
    # the right-hand sides from the address alone, beside ``nbytes``
    to_boundary = Signal(signed(14), name=f"{ch}_bytes_to_boundary")
    to_cap = Signal(signed(max(len(nbytes), (MAX_BURST_BEATS << lg).bit_length()) + 1),
                    name=f"{ch}_bytes_to_cap")
    m.d.comb += [to_boundary.eq(BURST_BOUNDARY - b - addr[:12]),
                 to_cap.eq((MAX_BURST_BEATS << lg) - (b - 1) - low)]

    def minus(beats: int):
        """``total - beats`` as one sum (a multiple of ``B`` taken off ``x``)."""
        return (nbytes + low + ((b - 1) - (beats << lg))) >> lg

    return _plan(m, ch, lg, aligned, minus(0), _room(m, aligned, lg, ch), nbytes <= to_boundary,
                 nbytes < to_cap, minus(MAX_BURST_BEATS), minus(BURST_BOUNDARY >> lg))


def _room(m: Module, aligned, lg: int, ch: str) -> Signal:
    """The beats from the aligned address ``aligned`` (its bits in the 4 KiB page) to the
    next `BURST_BOUNDARY`."""
    room = Signal(range((BURST_BOUNDARY >> lg) + 1), name=f"{ch}_room_now")
    m.d.comb += room.eq((BURST_BOUNDARY - aligned) >> lg)
    return room


def _plan(m: Module, ch: str, lg: int, aligned, total, room, below_room, below_cap,
          left_m_cap, left_m_page) -> dict:
    """The first burst's registers from the transfer's beats ``total``, ``room``, whether
    ``total`` is below the room and below the cap, and ``total`` less the cap and the page."""
    page = BURST_BOUNDARY >> lg
    diff = signed(len(Value.cast(total)) + 2)
    # room < cap, from the address bits (never when a page holds at most one burst)
    short = (aligned > BURST_BOUNDARY - (MAX_BURST_BEATS << lg)
             if page > MAX_BURST_BEATS else C(1, 1))
    first = {"beats": Signal(range(MAX_BURST_BEATS + 1), name=f"{ch}_plan_beats"),
             "room": Signal(range(page + 1), name=f"{ch}_plan_room"),
             "left_m_cap": Signal(diff, name=f"{ch}_plan_left_m_cap"),
             "left_m_page": Signal(diff, name=f"{ch}_plan_left_m_page"),
             "room_m_cap": Signal(signed(len(room) + 2), name=f"{ch}_plan_room_m_cap")}
    m.d.sync += [first["beats"].eq(Mux(short, Mux(below_room, total, room),
                                       Mux(below_cap, total, MAX_BURST_BEATS))),
                 first["room"].eq(room),
                 first["left_m_cap"].eq(left_m_cap),
                 first["left_m_page"].eq(left_m_page),
                 first["room_m_cap"].eq(room - MAX_BURST_BEATS)]
    return first


def issue_bursts(m: Module, bus, ch: str, lg: int, accept, addr0, total, first: dict, enable=1,
                 addr: Signal | None = None, idle=None):
    """The AR (``ch="ar"``) or AW address channel: on ``accept`` load the aligned address
    ``addr0``, ``total`` beats and the first burst (`first_burst`), then one burst per
    handshake while ``enable``. The next burst's beats are chosen among registers and their
    differences with the present burst's (no chain of comparisons after a subtraction).
    ``bus`` needs ``<ch>addr``, ``<ch>len``, ``<ch>valid``, ``<ch>ready`` (and drives
    ``<ch>size``, ``<ch>burst``, ``<ch>id`` where it has them); ``addr``: the register of the
    next burst's address (made here if None); ``idle``: a register high while no transfer
    runs and none starts but on ``accept`` (None: ``accept`` loads everything); the address
    and the burst registers then load in every such cycle, ``accept`` the beat count alone.
    Returns (beats still to request, handshake, the present burst's beats, the next burst's
    address)."""
    page = BURST_BOUNDARY >> lg
    if addr is None:
        addr = Signal(len(Value.cast(addr0)), name=f"{ch}_next")
    left = Signal(total.shape(), name=f"{ch}_left")
    # ``left != 0`` kept in a register beside it: the channel's valid is a flip-flop's AND
    # (a W channel's ready may depend on AW's valid in the same cycle)
    any_left = Signal(name=f"{ch}_any_left")
    regs = {k: Signal.like(v, name=f"{ch}_{k}") for k, v in first.items()}
    beats, room = regs["beats"], regs["room"]
    valid, ready = getattr(bus, f"{ch}valid"), getattr(bus, f"{ch}ready")
    m.d.comb += [valid.eq(enable & any_left), getattr(bus, f"{ch}addr").eq(addr),
                 getattr(bus, f"{ch}len").eq(beats - 1)]
    for member, value in (("size", lg), ("burst", BURST_INCR), ("id", 0)):
        if f"{ch}{member}" in bus.signature.members:
            m.d.comb += getattr(bus, f"{ch}{member}").eq(value)
    shake = valid & ready
    load = [addr.eq(addr0)] + [regs[k].eq(v) for k, v in first.items()]
    with m.If(accept):
        m.d.sync += [left.eq(total), any_left.eq(total != 0)] + (load if idle is None else [])
    with m.Elif(shake):
        boundary = beats == room                      # this burst ends at the boundary
        left_next, room_next = left - beats, room - beats
        cap = min(page, MAX_BURST_BEATS)
        # after the boundary: a whole page ahead, the next burst min(left', cap)
        fits = regs["left_m_page"] < beats if page <= MAX_BURST_BEATS else regs["left_m_cap"] < beats
        at_boundary = Mux(fits, left_next, cap)
        # inside the page: min(left', room', cap) with room' < cap iff room - cap < beats
        inside = Mux(regs["room_m_cap"] < beats,
                     Mux(left < room, left_next, room_next),
                     Mux(regs["left_m_cap"] < beats, left_next, MAX_BURST_BEATS))
        m.d.sync += [addr.eq(addr + (beats << lg)), left.eq(left_next), any_left.eq(left != beats),
                     beats.eq(Mux(boundary, at_boundary, inside)),
                     room.eq(Mux(boundary, page, room_next)),
                     regs["left_m_cap"].eq(regs["left_m_cap"] - beats),
                     regs["left_m_page"].eq(regs["left_m_page"] - beats),
                     regs["room_m_cap"].eq(Mux(boundary, page - MAX_BURST_BEATS,
                                               regs["room_m_cap"] - beats))]
    if idle is not None:
        with m.If(idle):
            m.d.sync += load
    return left, shake, beats, addr
