# Fits the f32 erf polynomials of compiler/codegen/wasm/math-extra.ts (and the WGSL copy): least squares on
# Chebyshev nodes, weighted for relative error, then simulated in float32 (Horner) against math.erf.
# Run: /usr/bin/python3 scripts/fit-erf.py   (numpy only; prints the coefficients and the max error in ulps)
import math
import numpy as np

def cheb(lo, hi, n):
    k = np.arange(n)
    return (lo + hi) / 2 + (hi - lo) / 2 * np.cos((2 * k + 1) * np.pi / (2 * n))

def fit(xs, ys, w, deg):
    a = np.vander(xs, deg + 1) * w[:, None]
    c, *_ = np.linalg.lstsq(a, ys * w, rcond=None)
    return [float(np.float32(v)) for v in c]

def horner32(c, x):
    acc = np.float32(c[0])
    for k in c[1:]:
        acc = np.float32(acc * x + np.float32(k))
    return acc

def ulps(got, want):
    want32 = np.float32(want)
    if want32 == 0:
        return 0.0
    return abs(float(got) - want) / float(np.spacing(np.abs(want32)))

SPLIT = 0.875
# |x| < SPLIT: erf(x) = x + x * P(s), s = x^2 (the x term exact, P(s) = erf(x)/x - 1 is small)
s = cheb(0.0, SPLIT ** 2, 400)
x = np.sqrt(s)
target = np.array([(math.erf(v) - v) / v if v > 0 else 2 / math.sqrt(math.pi) - 1 for v in x])
P = fit(s, target, 1 / np.abs(np.array([math.erf(v) / v if v > 0 else 1.128 for v in x])), 6)

# |x| >= SPLIT: erf(x) = 1 - exp(Q(t)), t = min(|x|, 4)
t = cheb(SPLIT, 4.0, 600)
Q = fit(t, np.array([math.log(math.erfc(v)) for v in t]), np.ones_like(t), 10)

def erf32(v):
    v = np.float32(v)
    a = np.float32(abs(v))
    if a < SPLIT:
        s_ = np.float32(v * v)
        return np.float32(v + np.float32(v * horner32(P, s_)))
    tt = np.float32(min(a, np.float32(4)))
    r = np.float32(1) - np.float32(math.exp(float(horner32(Q, tt))))
    return np.float32(math.copysign(float(r), float(v)))

worst = 0.0
for v in np.concatenate([np.linspace(-6, 6, 200001), np.geomspace(1e-30, 1, 2001)]):
    v32 = float(np.float32(v))
    worst = max(worst, ulps(erf32(v32), math.erf(v32)))
print("SPLIT =", SPLIT)
print("P =", [repr(c) for c in P])
print("Q =", [repr(c) for c in Q])
print("max error (exact exp) in ulps:", round(worst, 3))
