#!/usr/bin/env python3
"""A bandwidth-limiting TCP proxy on loopback for the benchmarks (stdlib only).

    throttle.py --upstream HOST:PORT [--listen 127.0.0.1:0] [--rate 100Mbit]
                [--port-file FILE] [--stats FILE]

Forwards raw TCP both ways between each accepted connection and UPSTREAM. Every byte that
crosses the proxy, in either direction and on any connection, takes tokens from ONE token
bucket filled at RATE (bits per second): the total rate of all connections together is
limited, as one shared link would be. The bucket holds at most 20 ms of tokens, so a burst
is short.

The listening port is printed on stdout (and written to --port-file) once the proxy listens.
--stats FILE is rewritten (at most every 0.2 s, when something changed) with
`KEY VALUE` lines: `down` bytes sent to clients (the registry's answers),
`up` bytes sent to the upstream, `conns` connections accepted. SIGTERM/SIGINT stop it.
"""

import argparse
import asyncio
import os
import re
import signal
import sys
import time

CHUNK = 16 * 1024


def parse_rate(text):
    """'100Mbit', '1Gbit', '500kbit', '12.5MB' (bytes), or plain bits per second -> bytes/s."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kKmMgG]?)(bit|b|B|byte)?(/s|ps)?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (e.g. 100Mbit)")
    value = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2).lower()]
    unit = m.group(3) or "bit"
    per_byte = unit in ("B", "byte")
    rate = value if per_byte else value / 8
    if rate <= 0:
        raise argparse.ArgumentTypeError("the rate must be above zero")
    return rate


class Bucket:
    """One token bucket (bytes) shared by every connection; callers queue on a lock, so the
    link is shared first come, first served."""

    def __init__(self, rate):
        self.rate = rate
        self.capacity = max(rate * 0.02, CHUNK)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, n):
        async with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            self.tokens -= n
            if self.tokens < 0:
                # Sleep off the debt while holding the lock: nobody else sends meanwhile.
                await asyncio.sleep(-self.tokens / self.rate)


class Proxy:
    def __init__(self, upstream, bucket, stats):
        self.upstream = upstream
        self.bucket = bucket
        self.stats = stats
        self.counts = {"down": 0, "up": 0, "conns": 0}
        self.written = None

    async def pump(self, reader, writer, key):
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                await self.bucket.take(len(data))
                writer.write(data)
                await writer.drain()
                self.counts[key] += len(data)
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                if writer.can_write_eof():
                    writer.write_eof()
            except (ConnectionError, OSError):
                pass

    async def handle(self, client_r, client_w):
        self.counts["conns"] += 1
        host, port = self.upstream
        try:
            up_r, up_w = await asyncio.open_connection(host, port)
        except OSError as e:
            print(f"throttle.py: cannot reach {host}:{port}: {e}", file=sys.stderr)
            client_w.close()
            return
        await asyncio.gather(
            self.pump(client_r, up_w, "up"), self.pump(up_r, client_w, "down")
        )
        for w in (up_w, client_w):
            w.close()

    def write_stats(self):
        snapshot = dict(self.counts)
        if self.stats and snapshot != self.written:
            tmp = f"{self.stats}.tmp"
            with open(tmp, "w") as f:
                for k, v in snapshot.items():
                    f.write(f"{k} {v}\n")
            os.replace(tmp, self.stats)
            self.written = snapshot

    async def stats_loop(self):
        while True:
            self.write_stats()
            await asyncio.sleep(0.2)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True, help="HOST:PORT to forward to")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any free one)")
    ap.add_argument("--rate", type=parse_rate, default=parse_rate("100Mbit"))
    ap.add_argument("--port-file")
    ap.add_argument("--stats")
    a = ap.parse_args()
    uh, _, up = a.upstream.rpartition(":")
    lh, _, lp = a.listen.rpartition(":")
    proxy = Proxy((uh, int(up)), Bucket(a.rate), a.stats)
    server = await asyncio.start_server(proxy.handle, lh, int(lp))
    port = server.sockets[0].getsockname()[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(a.port_file + ".tmp", a.port_file)
    print(port, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stats = asyncio.create_task(proxy.stats_loop())
    async with server:
        await stop.wait()
    stats.cancel()
    proxy.write_stats()


if __name__ == "__main__":
    asyncio.run(main())
