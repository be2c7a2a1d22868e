#!/usr/bin/python3
"""Turn bench/run.sh's raw results (fs, figure, value per line) into the comparison tables:
local: rows = figures, columns = umbrafs, the peers, the best peer and umbrafs's ratio to it;
remote: umbrafs next to rclone crypt on each server, with the ratio; and the requests each phase
sent to the server. A ratio > 1 means umbrafs is better, for times and memory too. Prints the
tables and writes Markdown and TSV.

With several rounds (run.sh --repeat) each figure is the median over the rounds, the peak RSS the
maximum, and the local table gets a column with the spread (min-max) of umbrafs's values."""
import argparse
import collections
import statistics

# figure -> (label, higher_is_better)
FIGURES = {
    "write_mibs": ("streaming write, dd + fsync (MiB/s)", True),
    "read_cold_mibs": ("streaming read, cold (MiB/s)", True),
    "read_warm_mibs": ("streaming read, warm (MiB/s)", True),
    "untar_s": ("untar source tree (s)", False),
    "ls_lR_s": ("ls -lR, cold (s)", False),
    "read_all_s": ("read every file (s)", False),
    "rm_rf_s": ("rm -rf tree (s)", False),
    "randread_iops": ("fio 4 KiB randread (IOPS)", True),
    "randwrite_iops": ("fio 4 KiB randwrite (IOPS)", True),
    "peak_rss_mib": ("daemon peak RSS (MiB)", False),
}
# On a remote store a write counts until the data is on the server (run_suite: stored).
REMOTE_LABELS = {
    "write_mibs": "streaming write, dd + fsync + unmount: until on the server (MiB/s)",
    "untar_s": "untar source tree + unmount: until on the server (s)",
    "ls_lR_s": "ls -lR, cold: new mount, empty cache (s)",
    "rm_rf_s": "rm -rf tree + unmount (s)",
}
# phase -> label of the requests table
PHASES = {
    "req_write": "streaming write",
    "req_read_cold": "streaming read, cold",
    "req_untar": "untar source tree",
    "req_ls_lR": "ls -lR, cold",
    "req_read_all": "read every file",
    "req_rm_rf": "rm -rf tree",
}
LOCAL_PEERS = ["gocryptfs", "securefs"]
SERVERS = ["webdav", "s3"]
TARGET_RATIO = 1.5
RSS_LIMIT_MIB = 150
REMOTE_UNTAR_TARGET = 3.0  # the issue: remote untar at least 3x rclone


class Spread(collections.namedtuple("Spread", "low high")):
    """The range of one figure's values over the rounds: "310-390" in the text and Markdown, two
    columns in the TSV."""
    def __str__(self):
        return "n/a" if self.low is None else f"{fmt(self.low)}-{fmt(self.high)}"


def load(path):
    """The raw results: figure -> fs -> the values of the rounds, and the number of rounds. A line
    is fs, figure, value and round (a line without a round is of round 1)."""
    rounds = collections.defaultdict(lambda: collections.defaultdict(list))
    last_round = 1
    with open(path) as f:
        for line in f:
            fs, figure, value, *rnd = line.rstrip("\n").split("\t")
            rounds[figure][fs].append(float(value))
            last_round = max(last_round, int(rnd[0]) if rnd else 1)
    return rounds, last_round


def summarize(rounds):
    """figure -> fs -> the one value the tables show: the median of the rounds (peak RSS: the
    maximum, as it is the peak over the whole run)."""
    pick = lambda figure: max if figure == "peak_rss_mib" else statistics.median
    return {figure: {fs: pick(figure)(vs) for fs, vs in by_fs.items()}
            for figure, by_fs in rounds.items()}


def fmt(v):
    if v is None:
        return "n/a"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"


def ratio(ours, best, higher):
    if ours is None or best is None or ours == 0 or best == 0:
        return None
    return ours / best if higher else best / ours


def local_rows(values, rounds, spread):
    peers = [p for p in LOCAL_PEERS if any(p in v for v in values.values())]
    header = ["figure", "umbrafs"] + (["spread"] if spread else []) + peers + \
        ["best peer", "ratio", "target"]
    rows = []
    for key, (label, higher) in FIGURES.items():
        v = values.get(key, {})
        ours = v.get("umbrafs")
        ours_all = rounds.get(key, {}).get("umbrafs")
        ours_spread = Spread(min(ours_all), max(ours_all)) if ours_all else Spread(None, None)
        got = [(v[p], p) for p in peers if p in v]
        best = (max if higher else min)(got) if got else None
        r = ratio(ours, best[0] if best else None, higher)
        if key == "peak_rss_mib":
            met = None if ours is None else ours < RSS_LIMIT_MIB
            target = f"< {RSS_LIMIT_MIB} MiB"
        else:
            met = None if r is None else r >= TARGET_RATIO
            target = f">= {TARGET_RATIO}x"
        rows.append([label, fmt(ours)] + ([ours_spread] if spread else []) +
                    [fmt(v.get(p)) for p in peers] +
                    [f"{fmt(best[0])} ({best[1]})" if best else "n/a",
                     "n/a" if r is None else f"{r:.2f}x",
                     target + ("" if met is None else " ok" if met else " MISSED")])
    return header, rows


def remote_rows(values):
    header = ["figure"]
    for server in SERVERS:
        header += [f"umbrafs {server}", f"rclone crypt {server}", f"ratio {server}"]
    rows = []
    for key, (label, higher) in FIGURES.items():
        row = [REMOTE_LABELS.get(key, label)]
        for server in SERVERS:
            v = values.get(key, {})
            ours, theirs = v.get(f"umbrafs-{server}"), v.get(f"rclone-{server}")
            r = ratio(ours, theirs, higher)
            row += [fmt(ours), fmt(theirs), "n/a" if r is None else f"{r:.2f}x"]
        rows.append(row)
    return header, rows


def remote_target(values):
    """The issue's remote target, one line per server."""
    out = []
    for server in SERVERS:
        v = values.get("untar_s", {})
        r = ratio(v.get(f"umbrafs-{server}"), v.get(f"rclone-{server}"), False)
        met = "n/a" if r is None else "ok" if r >= REMOTE_UNTAR_TARGET else "MISSED"
        out.append(f"untar on {server}: {'n/a' if r is None else f'{r:.2f}x'} of rclone crypt, "
                   f"target >= {REMOTE_UNTAR_TARGET:g}x: {met}")
    return out


def request_rows(values, tree_files):
    fses = [f"{tool}-{server}" for server in SERVERS for tool in ("umbrafs", "rclone")]
    header = ["phase"] + [fs.replace("rclone", "rclone crypt").replace("-", " ") for fs in fses]
    count = lambda key, fs: "n/a" if fs not in values.get(key, {}) else f"{values[key][fs]:.0f}"
    rows = [[label] + [count(key, fs) for fs in fses] for key, label in PHASES.items()]
    rows.append([f"files found after a cold remount (of {tree_files})"] +
                [count("tree_files", fs) for fs in fses])
    return header, rows


def text_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def tsv_table(header, rows):
    """Tab-separated, a spread as two columns (umbrafs min, umbrafs max)."""
    spread_cols = {i for i, h in enumerate(header) if h == "spread"}
    cells = lambda r: [c for i, cell in enumerate(r) for c in
                       ([fmt(cell.low), fmt(cell.high)] if i in spread_cols else [str(cell)])]
    head = [c for i, h in enumerate(header) for c in
            (["umbrafs min", "umbrafs max"] if i in spread_cols else [h])]
    return "".join("\t".join(r) + "\n" for r in [head] + [cells(r) for r in rows])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--machine", required=True)
    ap.add_argument("--mode", required=True)
    ap.add_argument("--tree", required=True)
    ap.add_argument("--tree-files", required=True, type=int)
    ap.add_argument("--md", required=True)
    ap.add_argument("--tsv", required=True)
    a = ap.parse_args()
    rounds, n_rounds = load(a.results)
    values = summarize(rounds)
    tables = []  # (title, header, rows, notes)
    if any(p in v for v in values.values() for p in ["umbrafs"] + LOCAL_PEERS):
        tables.append(("local store on tmpfs", *local_rows(values, rounds, n_rounds > 1), []))
    if any(fs.split("-")[-1] in SERVERS for v in values.values() for fs in v):
        tables.append(("remote stores on the loopback: umbrafs and rclone crypt on the same servers",
                       *remote_rows(values), remote_target(values)))
        tables.append(("requests the server answered, per phase",
                       *request_rows(values, a.tree_files), []))
    with open(a.machine) as f:
        machine = f.read().strip()
    intro = f"mode: {a.mode}; tree: {a.tree} ({a.tree_files} files)\n"
    if n_rounds > 1:
        intro += (f"rounds: {n_rounds} (median of each figure; peak RSS: the maximum; spread: "
                  f"umbrafs's lowest-highest; remote suites: 1 round)\n")
    intro += machine
    print(intro)
    for title, header, rows, notes in tables:
        print(f"\n{title}\n{text_table(header, rows)}" + "".join(f"\n{n}" for n in notes))
    with open(a.md, "w") as f:
        f.write(f"# umbrafs benchmark ({a.mode})\n\n" + "\n".join(f"- {l}" for l in intro.splitlines()))
        for title, header, rows, notes in tables:
            f.write(f"\n\n## {title}\n\n{md_table(header, rows)}\n")
            f.write("".join(f"\n- {n}" for n in notes) + ("\n" if notes else ""))
    with open(a.tsv, "w") as f:
        for title, header, rows, notes in tables:
            f.write(tsv_table(header, rows))


if __name__ == "__main__":
    main()
