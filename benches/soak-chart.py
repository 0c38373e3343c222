"""Summary and SVG chart of a soak run (benches/soak.sh): RSS and open fds over time, p99
latency per round. No plotting library needed: the SVG is written by hand."""
import csv
import sys

out = sys.argv[1]
samples = list(csv.DictReader(open(f"{out}/samples.csv")))
rounds = list(csv.DictReader(open(f"{out}/rounds.csv")))
t = [float(s["t"]) for s in samples]
rss = [int(s["rss_kib"]) / 1024 for s in samples]
fds = [int(s["fds"]) for s in samples]
rt = [float(r["t"]) for r in rounds]
p99 = [float(r["p99_ms"]) for r in rounds]
msgs = sum(int(r["messages"]) for r in rounds)
errors = sum(int(r["errors"]) for r in rounds)
rate = [int(r["per_s"]) for r in rounds]

W, H, L, B = 760, 220, 60, 30
def panel(y0, xs, ys, colour, label, unit):
    tmax = max(t + rt + [1])
    ymax = max(ys + [1]) * 1.15
    pts = " ".join(f"{L + (x / tmax) * (W - L - 20):.1f},{y0 + H - B - (y / ymax) * (H - B - 20):.1f}" for x, y in zip(xs, ys))
    g = [f'<text x="{L}" y="{y0 + 14}" font-weight="bold">{label}</text>']
    for i in range(5):
        v = ymax * i / 4
        y = y0 + H - B - (v / ymax) * (H - B - 20)
        g.append(f'<line x1="{L}" x2="{W-20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6eb"/><text x="{L-6}" y="{y+4:.1f}" text-anchor="end">{v:.0f}{unit}</text>')
    for i in range(6):
        x = L + i / 5 * (W - L - 20)
        g.append(f'<text x="{x:.1f}" y="{y0 + H - 10}" text-anchor="middle">{tmax * i / 5:.0f} s</text>')
    g.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>')
    return "\n".join(g)

svg = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {2*H+10}" width="{W}" style="font:11px sans-serif;background:#fff">']
svg.append(panel(0, t, rss, "#1f5fa8", f"maildlp milter RSS (MiB) over {msgs:,} messages", ""))
svg.append(panel(H + 10, rt, p99, "#a8321f", "p99 latency per round of 50,000 (ms)", ""))
svg.append("</svg>")
open(f"{out}/soak.svg", "w").write("\n".join(svg))

print(f"messages: {msgs:,} in {rt[-1] if rt else 0:.0f} s, errors: {errors}")
print(f"throughput per round: min {min(rate)} / median {sorted(rate)[len(rate)//2]} / max {max(rate)} messages/s")
print(f"RSS MiB: first {rss[0]:.1f}, after round 1 {rss[min(len(rss)-1, int(rt[0]) if rt else 0)]:.1f}, max {max(rss):.1f}, last {rss[-1]:.1f}")
print(f"open fds: first {fds[0]}, max {max(fds)}, last {fds[-1]}")
print(f"p99 ms per round: first {p99[0]:.2f}, min {min(p99):.2f}, max {max(p99):.2f}, last {p99[-1]:.2f}")
print(f"chart: {out}/soak.svg")
