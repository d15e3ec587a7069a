// Formats benchmark results: one block per case (every system and thread count, ms, GFLOP/s, and on Kiln's rows
// its speed ratio to each peer at the same thread count), plus the targets as met / missed lines.

const PEERS = ["tfjs-wasm", "onnxruntime-web", "jax-js"];
const isKiln = (s) => s.startsWith("kiln");

function pad(s, n, right = false) {
  s = String(s);
  return right ? s.padStart(n) : s.padEnd(n);
}

/** A peer's time at `threads`, or at 1 thread (marked) when it has no pool at that count under Node. */
function peerMs(results, c, peer, threads) {
  const at = (t) => results.find((r) => r.case === c && r.system === peer && r.threads === t);
  const same = at(threads);
  if (same) return { ms: same.ms, mark: "" };
  const one = at(1);
  return one ? { ms: one.ms, mark: "¹" } : null;
}

/** Relative difference of output sums against Kiln's (a sanity check that every system computed the same). */
function checkNote(results, c) {
  const ref = results.find((r) => r.case === c && r.system === "kiln" && r.threads === 1)?.check;
  if (!ref) return "";
  const off = results.filter((r) => r.case === c && r.check && !r.system.endsWith("kernel"))
    .filter((r) => Math.abs(r.check.sum - ref.sum) > 1e-3 * (ref.abs + 1e-9) || r.check.n !== ref.n)
    .map((r) => `${r.system} ${r.threads}T`);
  return off.length ? `  !! output differs from Kiln's: ${off.join(", ")}` : "";
}

export function formatTable(caseList, results) {
  const head = `${pad("case", 22)}${pad("system", 22)}${pad("thr", 4, true)}${pad("ms", 10, true)}${pad("GFLOP/s", 9, true)}` +
    PEERS.map((p) => pad(`vs ${p}`, 20, true)).join("");
  const lines = [head, "-".repeat(head.length)];
  for (const c of caseList) {
    const rows = results.filter((r) => r.case === c.id).sort((a, b) => a.threads - b.threads || a.system.localeCompare(b.system));
    if (c.kind === "train" && !rows.some((r) => isKiln(r.system))) {
      lines.push(`${pad(c.id, 22)}TODO: the MLP training step needs the autodiff work (not measured)`);
      continue;
    }
    rows.forEach((r, i) => {
      const gf = c.flops ? (c.flops / (r.ms * 1e6)).toFixed(1) : "—";
      let ratios = "";
      if (isKiln(r.system)) {
        ratios = PEERS.map((p) => {
          const q = peerMs(results, c.id, p, r.threads);
          return pad(q ? `${(q.ms / r.ms).toFixed(2)}x${q.mark}` : "—", 20, true);
        }).join("");
      }
      lines.push(`${pad(i === 0 ? c.id : "", 22)}${pad(r.system, 22)}${pad(r.threads, 4, true)}${pad(r.ms.toFixed(3), 10, true)}${pad(gf, 9, true)}${ratios}`);
    });
    const note = checkNote(results, c.id);
    if (note) lines.push(note);
    lines.push("");
  }
  lines.push("Ratios are peer time / Kiln time (above 1: Kiln is faster), at the same thread count; ¹ the peer's 1-thread time");
  lines.push("(no thread pool under Node). \"kernel\" rows time Kiln's matmul kernel alone, operands already in wasm memory.");
  return lines.join("\n");
}

/** The one-thread matmul targets, evaluated on these results. */
export function targets(caseList, results) {
  const get = (c, s, t = 1) => results.find((r) => r.case === c && r.system === s && r.threads === t);
  const mm = caseList.filter((c) => c.kind === "matmul" && c.n >= 256);
  const out = ["", "Targets (1 thread):"];
  for (const c of mm.filter((x) => x.mode === "nn")) {
    const best = PEERS.map((p) => get(c.id, p)).filter(Boolean).sort((a, b) => a.ms - b.ms)[0];
    for (const k of ["kiln", "kiln-relaxed"]) {
      const r = get(c.id, k);
      if (!r || !best) continue;
      const ratio = best.ms / r.ms;
      out.push(`  ${c.id}: ${k} ${ratio.toFixed(2)}x the best peer (${best.system}) — ${ratio >= 1.5 ? "met" : "MISSED"} (>= 1.5x)`);
    }
  }
  for (const c of mm.filter((x) => x.mode === "nn")) {
    const r = get(c.id, "kiln kernel");
    if (r) out.push(`  ${c.id}: plain kernel ${(c.flops / (r.ms * 1e6)).toFixed(1)} GFLOP/s — ${c.flops / (r.ms * 1e6) >= 25 ? "met" : "MISSED"} (>= 25)`);
  }
  for (const c of mm.filter((x) => x.mode !== "nn")) {
    for (const k of ["kiln kernel", "kiln-relaxed kernel"]) {
      const t = get(c.id, k);
      const p = get(c.id.replace(/ (nt|tn)$/, " nn"), k);
      if (t && p) out.push(`  ${c.id}: ${k} ${((t.ms / p.ms - 1) * 100).toFixed(0)}% vs nn — ${t.ms <= 1.1 * p.ms ? "met" : "MISSED"} (within 10%)`);
    }
  }
  return out.join("\n");
}
