"""A fault-injecting HTTP/1.1 proxy for the end-to-end tests: it sits between
umbrafs and a server on 127.0.0.1 and passes the bytes through unchanged (the
Host header included, so SigV4 signatures made for the proxy's host:port stay
valid), except for some requests, chosen by a seeded schedule:

  reset-request   forward part of the request (never all of it), then reset
                  both sides: the request did not happen
  reset-response  forward the request, then reset after a part of the response:
                  the request happened, its answer is lost
  error           answer 503, 500 or 429 itself (Retry-After 0 or 1) and close
  stall           hold the request a few seconds before forwarding it

It understands just enough HTTP to find where each request ends (the head, then
Content-Length bytes; clients send no pipelined requests). Faults are bounded:
at most max_faults, none after fault_window seconds, and never two requests in
a row, so that a client retrying a few times always gets through.

    with FaultProxy(server_port, seed=1) as proxy:
        ... use 127.0.0.1:proxy.port ...
    proxy.stats  ->  {"requests": n, "reset-request": n, ...}

hold(predicate) holds every request whose head the predicate accepts (it
counts them in stats["held"]) until release().
"""
import asyncio
import random
import socket
import struct
import threading
import time

FAULTS = ("reset-request", "reset-response", "error", "stall")
ERRORS = {503: "Service Unavailable", 500: "Internal Server Error", 429: "Too Many Requests"}


class FaultProxy:
    def __init__(self, target_port, seed, fault_rate=0.12, max_faults=60, fault_window=120.0,
                 stall_seconds=(1.0, 3.0), faults=FAULTS):
        self.target_port = target_port
        self.faults = tuple(faults)
        self.rng = random.Random(seed)
        self.fault_rate = fault_rate
        self.max_faults = max_faults
        self.fault_window = fault_window
        self.stall_seconds = stall_seconds
        self.stats = dict.fromkeys(("requests", "faults", "connections", "held") + FAULTS, 0)
        self.stats["statuses"] = {}
        self.port = None
        self._last_was_fault = False
        self._hold = None  # a predicate on request heads: hold those until release()
        self._started = None
        self._loop = None
        self._thread = None

    # ----------------------------------------------------------- schedule

    def _next_action(self):
        self.stats["requests"] += 1
        if (self._last_was_fault or self.stats["faults"] >= self.max_faults
                or time.monotonic() - self._started > self.fault_window
                or self.rng.random() >= self.fault_rate):
            self._last_was_fault = False
            return "pass"
        self._last_was_fault = True
        action = self.rng.choice(self.faults)
        self.stats["faults"] += 1
        self.stats[action] += 1
        return action

    def hold(self, predicate):
        self._hold = predicate

    def release(self):
        self._hold = None

    async def _wait_while_held(self, head):
        hold = self._hold
        if hold is None or not hold(head):
            return
        self.stats["held"] += 1
        while self._hold is not None:
            await asyncio.sleep(0.02)

    # ------------------------------------------------------------- relay

    async def _handle(self, client_r, client_w):
        self.stats["connections"] += 1
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            reset(client_w)
            return
        cut = {"after": None}  # bytes of the coming response to pass before a reset
        down = asyncio.ensure_future(self._pump_down(server_r, client_w, server_w, cut))
        try:
            while not down.done():
                head = await client_r.readuntil(b"\r\n\r\n")
                length = content_length(head)
                if length is None:  # a chunked body: relay the rest as it comes
                    server_w.write(head)
                    await copy_exactly(client_r, server_w, None)
                    break
                await self._wait_while_held(head)
                action = self._next_action()
                if action == "error":
                    await self._answer_error(client_w)
                    break
                if action == "reset-request":  # the server never sees a whole request
                    if length:
                        server_w.write(head)
                        server_w.write(await client_r.readexactly(self.rng.randrange(length)))
                    else:
                        server_w.write(head[:self.rng.randrange(1, len(head) - 1)])
                    await server_w.drain()
                    break
                if action == "stall":
                    await asyncio.sleep(self.rng.uniform(*self.stall_seconds))
                if action == "reset-response":
                    cut["after"] = self.rng.randrange(0, 400)
                server_w.write(head)
                await copy_exactly(client_r, server_w, length)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError):
            pass
        finally:
            down.cancel()
            reset(client_w)
            reset(server_w)

    async def _answer_error(self, client_w):
        status = self.rng.choice(sorted(ERRORS))
        self.stats["statuses"][status] = self.stats["statuses"].get(status, 0) + 1
        retry_after = "" if status == 500 else f"Retry-After: {self.rng.choice((0, 1))}\r\n"
        client_w.write(f"HTTP/1.1 {status} {ERRORS[status]}\r\n{retry_after}"
                       "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await client_w.drain()
        client_w.close()  # a FIN after the answer: a reset could discard it

    async def _pump_down(self, server_r, client_w, server_w, cut):
        try:
            while True:
                data = await server_r.read(65536)
                if not data:
                    return
                if cut["after"] is not None:
                    client_w.write(data[:cut["after"]])
                    await client_w.drain()
                    reset(client_w)
                    reset(server_w)
                    return
                client_w.write(data)
                await client_w.drain()
        except (ConnectionError, OSError):
            return
        finally:
            if not client_w.is_closing():
                client_w.close()  # the server closed: so does the client's side

    # --------------------------------------------------------- lifecycle

    def start(self):
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 20))
            self.port = server.sockets[0].getsockname()[1]
            self._server = server
            ready.set()
            self._loop.run_forever()
            server.close()
            tasks = asyncio.all_tasks(self._loop)  # connections still open: end them
            for t in tasks:
                t.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

        self._started = time.monotonic()
        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self):
        if self._loop and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def content_length(head):
    """Length of the body that follows head; None for a chunked one."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            return None
    return 0


async def copy_exactly(reader, writer, n):
    """Relay n bytes (None: until the end of the stream)."""
    while n is None or n > 0:
        data = await reader.read(65536 if n is None else min(n, 65536))
        if not data:
            if n is None:
                return
            raise asyncio.IncompleteReadError(b"", n)
        writer.write(data)
        await writer.drain()
        if n is not None:
            n -= len(data)


def reset(writer):
    """Close with a TCP reset (SO_LINGER 0), not a FIN."""
    if writer.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()
