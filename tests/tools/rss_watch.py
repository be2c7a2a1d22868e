#!/usr/bin/python3
"""Watch the resident memory (VmRSS) of a process, such as the umbrafs
daemon, over a long run and fail when it keeps growing after a warm-up.

As a pytest helper:

    from rss_watch import RssWatch
    with RssWatch(daemon_pid, warmup_s=10, bound_kib=16 * 1024) as watch:
        run_random_operations()
    watch.check()          # AssertionError with the figures if it grew

From the command line (exit 1 if the memory grew, else the command's code):

    tests/tools/rss_watch.py --pid PID [--warmup 10] [--bound-mib 16]
        [--interval 0.5] (--duration SECONDS | -- COMMAND ARGS...)

The rule: the baseline is the highest VmRSS seen in the first `window_s`
seconds after the warm-up (caches fill and settle there); the run fails when
any later sample exceeds baseline + bound. A leak grows without bound, so a
long enough run crosses any fixed bound; a full cache does not.

`--self-test` checks the rule itself on a child that leaks and one that
does not.
"""
import argparse
import subprocess
import sys
import threading
import time


def vm_rss_kib(pid):
    """VmRSS of pid in KiB, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None  # a zombie has no VmRSS line


class RssWatch:
    """Samples VmRSS of pid every interval_s seconds in a thread."""

    def __init__(self, pid, warmup_s=10.0, window_s=5.0, bound_kib=16 * 1024, interval_s=0.5):
        self.pid = pid
        self.warmup_s = warmup_s
        self.window_s = window_s
        self.bound_kib = bound_kib
        self.interval_s = interval_s
        self.samples = []  # (seconds since start, KiB)
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            kib = vm_rss_kib(self.pid)
            if kib is None:
                break
            self.samples.append((time.monotonic() - self._t0, kib))
            self._stop.wait(self.interval_s)

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def verdict(self):
        """(ok, message): whether VmRSS stayed within baseline + bound."""
        settled = [(t, k) for t, k in self.samples if t >= self.warmup_s]
        window = [k for t, k in settled if t < self.warmup_s + self.window_s]
        later = [(t, k) for t, k in settled if t >= self.warmup_s + self.window_s]
        if not window or not later:
            return False, (f"too few samples after the {self.warmup_s:g} s warm-up "
                           f"({len(self.samples)} in all): run longer")
        baseline = max(window)
        peak_t, peak = max(later, key=lambda s: s[1])
        first = self.samples[0][1]
        last = self.samples[-1][1]
        message = (f"VmRSS of {self.pid}: {first} KiB at start, baseline {baseline} KiB after "
                   f"warm-up, peak {peak} KiB at {peak_t:.1f} s, {last} KiB at the end "
                   f"({len(self.samples)} samples); bound +{self.bound_kib} KiB")
        return peak <= baseline + self.bound_kib, message

    def check(self):
        ok, message = self.verdict()
        assert ok, "memory grew: " + message
        return message


def self_test():
    """The rule must pass a steady process and fail a leaking one."""
    child = ("import sys, time\n"
             "leak = sys.argv[1] == 'leak'; kept = []\n"
             "for _ in range(40):\n"
             "    kept.append(bytearray(1 << 20) if leak else None)\n"
             "    if leak: kept[-1][::4096] = b'x' * len(kept[-1][::4096])\n"
             "    time.sleep(0.1)\n")
    results = {}
    for kind in ("steady", "leak"):
        proc = subprocess.Popen([sys.executable, "-c", child, kind])
        with RssWatch(proc.pid, warmup_s=0.5, window_s=0.5, bound_kib=8 * 1024,
                      interval_s=0.1) as watch:
            proc.wait()
        results[kind] = watch.verdict()
        print(f"{kind}: {'ok' if results[kind][0] else 'grew'}: {results[kind][1]}")
    return results["steady"][0] and not results["leak"][0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pid", type=int)
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds ignored at the start")
    ap.add_argument("--window", type=float, default=5.0, help="seconds that set the baseline")
    ap.add_argument("--bound-mib", type=float, default=16.0, help="allowed growth over the baseline")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    ap.add_argument("--duration", type=float, help="watch this long (without a command)")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    if args.self_test:
        return 0 if self_test() else 1
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.pid is None or bool(command) == (args.duration is not None):
        ap.error("give --pid and either --duration or a command")
    watch = RssWatch(args.pid, args.warmup, args.window, int(args.bound_mib * 1024), args.interval)
    with watch:
        if command:
            rc = subprocess.call(command)
        else:
            time.sleep(args.duration)
            rc = 0
    ok, message = watch.verdict()
    print(("rss_watch: ok: " if ok else "rss_watch: memory grew: ") + message)
    return rc if ok else 1


if __name__ == "__main__":
    sys.exit(main())
