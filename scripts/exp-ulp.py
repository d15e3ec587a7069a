# Measures the softmax row exp of compiler/codegen/wasm/math.ts (expRow) in ulps, simulated in float32 without fused
# multiply-adds (the plain SIMD128 build), against float64 exp over the floats of [-87.6, 0] (every STRIDE-th bit
# pattern, default 97; 1 = all of them, ~2 minutes): EXP_Q (degree 6, what the plain build runs), XNNPACK's degree-5
# rr2-p5 (the relaxed build's, where the multiply-adds fuse), and degree-5 polynomials refitted for the ulp-weighted
# error (Lawson's iteratively reweighted least squares) in Horner form and as 1 + (r + r^2 q(r)). Shows why the plain
# build keeps degree 6: no degree-5 form found stays within the 2 ulp budget unfused.
# Run: /usr/bin/python3 scripts/exp-ulp.py [STRIDE]   (numpy only)
import sys
import numpy as np

f32 = np.float32
LOG2E = f32(1.4426950408889634)
SHIFT = f32(12582912 + 127)  # 1.5 * 2^23 + 127: n + 127 in t's low bits, as expReduce with bias 127
LN2_HI, LN2_LO = f32(0.693359375), f32(-2.12194440e-4)
EXP_Q = [1.381313312e-3, 8.369424380e-3, 4.166845605e-2, 1.666651517e-1, 4.999999404e-1, 1, 1]
EXP_P5 = [0.008289290592074394, 0.04189782217144966, 0.16667652130126953, 0.4999915063381195, 0.9999997019767761, 1]


def reduce(x):
    # madd and nmadd unfused: every product and every sum rounds to float32.
    t = (x * LOG2E).astype(f32) + SHIFT
    n = (t - SHIFT).astype(f32)
    r = (x - (n * LN2_HI)).astype(f32)
    return n, (r - (n * LN2_LO).astype(f32)).astype(f32)


def horner(r, cs):
    p = np.full_like(r, f32(cs[0]))
    for c in cs[1:]:
        p = ((p * r).astype(f32) + f32(c)).astype(f32)
    return p


def split(r, q):
    r2 = (r * r).astype(f32)
    return (f32(1) + (r + (r2 * horner(r, q)).astype(f32)).astype(f32)).astype(f32)


def max_ulp(p_of_r, stride):
    worst = 0.0
    top = int(np.array([-87.6], dtype=f32).view(np.uint32)[0])
    for b in range(0x80000000, top + 1, (1 << 24) * stride):
        x = np.arange(b, min(b + (1 << 24) * stride, top + 1), stride, dtype=np.uint32).view(f32)
        n, r = reduce(x)
        y = (p_of_r(r).astype(np.float64) * np.exp2(n.astype(np.float64))).astype(f32)  # p * 2^n, one rounding
        ref = np.exp(x.astype(np.float64))
        ulp = np.exp2(np.maximum(np.floor(np.log2(ref)), -126) - 23)
        worst = max(worst, float((np.abs(y.astype(np.float64) - ref) / ulp).max()))
    return worst


def lawson(phi, target, w, iters=3000):
    u = np.full(len(target), 1 / len(target))
    best = (np.inf, None)
    for _ in range(iters):
        s = np.sqrt(u) * w
        c, *_ = np.linalg.lstsq(phi * s[:, None], target * s, rcond=None)
        err = np.abs(phi @ c - target) * w
        if err.max() < best[0]:
            best = (err.max(), c)
        u = u * err
        u /= u.sum()
    return best


if __name__ == "__main__":
    stride = int(sys.argv[1]) if len(sys.argv) > 1 else 97
    rg = np.linspace(-0.3471, 0.3471, 20001)
    w = 1 / np.where(np.exp(rg) < 1, 2.0**-24, 2.0**-23)  # error in ulps of e^r
    fa, ca = lawson(np.stack([rg**k for k in range(1, 6)], 1), np.exp(rg) - 1, w)
    fb, cb = lawson(np.stack([rg**k for k in range(2, 6)], 1), np.exp(rg) - 1 - rg, w)
    ca = [float(f32(c)) for c in ca][::-1] + [1]
    cb = [float(f32(c)) for c in cb][::-1]
    print(f"every {stride}th float of [-87.6, 0], unfused float32, max error in ulps:")
    print(f"  EXP_Q degree 6 (plain build):          {max_ulp(lambda r: horner(r, EXP_Q), stride):.3f}")
    print(f"  XNNPACK rr2-p5 degree 5:               {max_ulp(lambda r: horner(r, EXP_P5), stride):.3f}")
    print(f"  degree 5 refit, Horner (fit {fa:.2f}):    {max_ulp(lambda r: horner(r, ca), stride):.3f}  {ca}")
    print(f"  degree 5 refit, 1 + r + r^2 q (fit {fb:.2f}): {max_ulp(lambda r: split(r, cb), stride):.3f}  {cb}")
