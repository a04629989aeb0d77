"""An emulated Feetech STS3215 bus on a pseudo-terminal, for running LeRobot's unmodified driver.

The test opens a pty; the driver opens its slave end as a serial port. A separate process (so the
driver's busy-polling reader in the test process cannot starve it past the SDK's ~50 ms packet
timeout) reads instruction packets from the master end and answers like STS3215 servos (protocol 0):
PING, READ, WRITE, REG_WRITE, SYNC_READ (one status packet per id) and SYNC_WRITE. Each servo is a
256-byte little-endian register table in shared memory. Every packet and every register write is
logged so tests can assert exactly what reached the bus.

Packets: instruction `FF FF id len instr params... chk`, `len = n_params + 2`; status
`FF FF id len err data... chk`; `chk = ~(sum of the bytes after FF FF, checksum excluded) & 0xFF`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pty
import select
import threading
import time
import tty
from dataclasses import dataclass

PING, READ, WRITE, REG_WRITE, ACTION, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x04, 0x05, 0x82, 0x83
BROADCAST = 0xFE
MODEL_STS3215 = 777
# Register addresses (lerobot.motors.feetech.tables.STS_SMS_SERIES_CONTROL_TABLE).
FW_MAJOR, FW_MINOR, MODEL, ID = 0, 1, 3, 5
MIN_POS, MAX_POS, HOMING_OFFSET = 9, 11, 31
TORQUE_ENABLE, GOAL_POSITION, LOCK, PRESENT_POSITION = 40, 42, 55, 56
TABLE = 256


def checksum(body) -> int:
    return (~sum(body)) & 0xFF


def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    return (1 << sign_bit) | -value if value < 0 else value


@dataclass
class BusWrite:
    time_s: float
    instruction: int
    motor_id: int
    address: int
    data: bytes

    def value(self) -> int:
        return int.from_bytes(self.data, "little")


class EmulatedFeetechBus:
    """STS3215 servos (ids 1..6 by default) answering on a pty; `port` is the path to give the driver."""

    def __init__(self, ids=(1, 2, 3, 4, 5, 6), follow_rate_ticks_s: float = 0.0) -> None:
        ctx = mp.get_context("fork")
        self.ids = tuple(ids)
        self._regs = ctx.RawArray("B", TABLE * (max(self.ids) + 1))
        self._lock = ctx.Lock()
        self._silent = ctx.RawValue("b", 0)
        # > 0: with torque on, Present_Position moves toward Goal_Position at this many ticks/s.
        self._follow = ctx.RawValue("d", float(follow_rate_ticks_s))
        self._log = ctx.SimpleQueue()
        self.writes: list[BusWrite] = []
        self.packets: list[tuple[float, int, int]] = []  # (time, id, instruction) of every packet received
        for i in self.ids:
            self.set_reg(i, FW_MAJOR, 3, 1)
            self.set_reg(i, FW_MINOR, 10, 1)
            self.set_reg(i, MODEL, MODEL_STS3215, 2)
            self.set_reg(i, ID, i, 1)
            self.set_reg(i, MAX_POS, 4095, 2)
            self.set_reg(i, PRESENT_POSITION, 2048, 2)
            self.set_reg(i, GOAL_POSITION, 2048, 2)
        self.master, slave = pty.openpty()
        tty.setraw(self.master)
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave  # kept open so the pty survives the driver closing and reopening it
        self._stop = ctx.Event()
        ready = ctx.Event()
        self._proc = ctx.Process(target=_serve, name="feetech-emulator", daemon=True,
                                 args=(self.master, self.ids, self._regs, self._lock, self._silent, self._follow,
                                       self._log, self._stop, ready))
        self._proc.start()
        if not ready.wait(10.0):
            raise RuntimeError("the Feetech emulator process did not start")
        # The log pipe must never fill up (the emulator would block mid-reply): drain it continuously.
        self._log_lock = threading.Lock()
        self._drainer = threading.Thread(target=self._drain_forever, name="feetech-log", daemon=True)
        self._drainer.start()

    # -- registers and logs ------------------------------------------------------------------------

    def set_reg(self, motor_id: int, address: int, value: int, size: int) -> None:
        base = motor_id * TABLE + address
        with self._lock:
            self._regs[base:base + size] = list(int(value).to_bytes(size, "little"))

    def reg(self, motor_id: int, address: int, size: int = 2) -> int:
        base = motor_id * TABLE + address
        with self._lock:
            return int.from_bytes(bytes(self._regs[base:base + size]), "little")

    def set_calibration(self, calibration: dict[int, tuple[int, int, int]]) -> None:
        """{id: (homing_offset, range_min, range_max)} into the EPROM registers."""
        for i, (offset, lo, hi) in calibration.items():
            self.set_reg(i, HOMING_OFFSET, encode_sign_magnitude(offset, 11), 2)
            self.set_reg(i, MIN_POS, lo, 2)
            self.set_reg(i, MAX_POS, hi, 2)

    @property
    def silent(self) -> bool:
        return bool(self._silent.value)

    @silent.setter
    def silent(self, value: bool) -> None:
        """True: every packet is swallowed, nothing answers (a dead bus or a pulled cable)."""
        self._silent.value = 1 if value else 0

    def _drain_forever(self) -> None:
        while True:
            entry = self._log.get()
            if entry is None:
                return
            kind, *item = entry
            with self._log_lock:
                if kind == "w":
                    self.writes.append(BusWrite(*item))
                else:
                    self.packets.append(tuple(item))

    def _settle(self) -> None:
        """Wait until what the emulator logged so far has been drained."""
        deadline = time.monotonic() + 1.0
        while not self._log.empty() and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(0.005)

    def goal_writes(self, since_s: float = 0.0) -> list[BusWrite]:
        self._settle()
        with self._log_lock:
            return [w for w in self.writes if w.address == GOAL_POSITION and w.time_s >= since_s]

    def writes_since(self, since_s: float) -> list[BusWrite]:
        self._settle()
        with self._log_lock:
            return [w for w in self.writes if w.time_s >= since_s]

    def packets_since(self, since_s: float) -> list[tuple[float, int, int]]:
        self._settle()
        with self._log_lock:
            return [p for p in self.packets if p[0] >= since_s]

    def close(self) -> None:
        self._stop.set()
        self._proc.join(timeout=2.0)
        if self._proc.is_alive():
            self._proc.kill()
        self._log.put(None)
        self._drainer.join(timeout=2.0)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


# -- the emulator process ------------------------------------------------------------------------

def _serve(master, ids, regs, lock, silent, follow, log, stop, ready) -> None:
    ids = tuple(ids)
    ready.set()
    carry = {i: 0.0 for i in ids}
    buf = bytearray()
    last = time.monotonic()
    while not stop.is_set():
        ready, _, _ = select.select([master], [], [], 0.002)
        now = time.monotonic()
        _move(regs, lock, ids, carry, follow.value if not silent.value else 0.0, now - last)
        last = now
        if not ready:
            continue
        try:
            buf += os.read(master, 4096)
        except OSError:
            continue
        while True:
            packet = _take_packet(buf)
            if packet is None:
                break
            log.put(("p", time.monotonic(), packet[0], packet[1]))
            if silent.value:
                continue
            reply = _handle(regs, lock, ids, log, *packet)
            if reply:
                os.write(master, reply)


def _take_packet(buf: bytearray):
    start = buf.find(b"\xff\xff")
    if start < 0:
        del buf[:max(0, len(buf) - 1)]
        return None
    del buf[:start]
    if len(buf) < 4:
        return None
    length = buf[3]
    if len(buf) < 4 + length:
        return None
    packet = bytes(buf[:4 + length])
    del buf[:4 + length]
    if checksum(packet[2:-1]) != packet[-1]:
        return None  # corrupt: a real servo stays silent
    return packet[2], packet[4], packet[5:-1]  # id, instruction, params


def _status(motor_id: int, data: bytes = b"") -> bytes:
    body = bytes([motor_id, len(data) + 2, 0]) + data
    return b"\xff\xff" + body + bytes([checksum(body)])


def _handle(regs, lock, ids, log, motor_id: int, instr: int, params: bytes) -> bytes:
    now = time.monotonic()

    def table(i, addr, n):
        return bytes(regs[i * TABLE + addr:i * TABLE + addr + n])

    def store(i, addr, data):
        regs[i * TABLE + addr:i * TABLE + addr + len(data)] = list(data)
        log.put(("w", now, instr, i, addr, bytes(data)))

    with lock:
        if instr == PING:
            targets = ids if motor_id == BROADCAST else ([motor_id] if motor_id in ids else [])
            return b"".join(_status(i) for i in targets)
        if instr == READ and motor_id in ids:
            return _status(motor_id, table(motor_id, params[0], params[1]))
        if instr in (WRITE, REG_WRITE) and (motor_id in ids or motor_id == BROADCAST):
            for i in (ids if motor_id == BROADCAST else [motor_id]):
                store(i, params[0], params[1:])
            return b"" if motor_id == BROADCAST else _status(motor_id)
        if instr == SYNC_READ:
            addr, n = params[0], params[1]
            return b"".join(_status(i, table(i, addr, n)) for i in params[2:] if i in ids)
        if instr == SYNC_WRITE:
            addr, n, body = params[0], params[1], params[2:]
            for k in range(0, len(body), n + 1):
                if body[k] in ids:
                    store(body[k], addr, body[k + 1:k + 1 + n])
            return b""
        return b""  # ACTION and unknown instructions: no reply


def _move(regs, lock, ids, carry, rate, dt) -> None:
    if rate <= 0:
        return
    with lock:
        for i in ids:
            base = i * TABLE
            if not regs[base + TORQUE_ENABLE]:
                continue
            present = regs[base + PRESENT_POSITION] | regs[base + PRESENT_POSITION + 1] << 8
            goal = regs[base + GOAL_POSITION] | regs[base + GOAL_POSITION + 1] << 8
            travel = carry[i] + min(rate * dt, abs(goal - present))
            move = int(travel)
            carry[i] = travel - move
            present += move if goal > present else -move
            regs[base + PRESENT_POSITION], regs[base + PRESENT_POSITION + 1] = present & 0xFF, present >> 8
