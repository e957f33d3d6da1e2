#!/usr/bin/python3
"""Fits the piecewise polynomial behind the AVX-512 gelu kernels (src/ops/simd/vmath_kernels.h).

(The AVX2 kernels keep a rational fit of S evaluated in double, mills_p / mills_q; the version
of this script before the table, in git history, fitted those.)

S(u) = Phi(-u) * exp(u^2 / 2) (Phi the standard normal CDF) on 32 intervals of u, the ones the
kernel picks by bits 20..24 of the float u + 2 (its exponent and top three mantissa bits):
widths 1/4 on [0, 2), 1/2 on [2, 6), 1 on [6, 14), 2 on [14, 30). On each, a polynomial of
degree 5 in t = u - mid (mid the interval's centre), fitted for relative error by least squares
on Chebyshev nodes (reference values from mpmath at 30 digits). The constant term is split in
two floats (high + low); c1..c5 are rounded to float one at a time, the later ones refitted
after each rounding. The check emulates the kernel's float evaluation (FMA Horner, then
y*t + low, then high + that) and prints the worst error in ulps per interval up to u = 16
(beyond, e^(-u^2/2) is 0 in float and S only needs to be finite): about 0.59 ulp.

Prints the C table (rows mid, c0 high, c0 low, c1..c5; 32 columns each) for mills_table.
Run with Debian's /usr/bin/python3 (numpy, mpmath). Not part of the build.
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 30
DEGREE = 5
f32 = np.float32


def target(u):
    u = mp.mpf(u)
    return float(mp.ncdf(-u) * mp.exp(u * u / 2))


def interval(i):
    octave, sub = divmod(i, 8)
    lo = 2.0 ** (octave + 1) * (1 + sub / 8) - 2.0
    hi = 2.0 ** (octave + 1) * (1 + (sub + 1) / 8) - 2.0
    return lo, hi


def fma32(a, b, c):
    return (a.astype(np.float64) * b.astype(np.float64) + np.float64(c)).astype(np.float32)


def evaluate(row, u):
    """The kernel's float evaluation of one interval's polynomial at float u."""
    t = (u.astype(np.float32) - f32(row[0])).astype(np.float32)
    y = np.full_like(t, f32(row[-1]))
    for c in row[-2:2:-1]:
        y = fma32(y, t, f32(c))
    y = fma32(y, t, f32(row[2]))
    return (y + f32(row[1])).astype(np.float32)


def fit(i):
    lo, hi = interval(i)
    mid = float(f32((lo + hi) / 2))
    n = 300
    k = np.arange(n)
    u = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / n)
    f = np.array([target(x) for x in u])
    t, w = u - mid, 1 / f
    a = np.vstack([t ** m for m in range(DEGREE + 1)]).T * w[:, None]
    sol, *_ = np.linalg.lstsq(a, f * w, rcond=None)
    c0_hi = float(f32(sol[0]))
    c0_lo = float(f32(sol[0] - c0_hi))
    coeffs = []
    for j in range(1, DEGREE + 1):
        rest = f - (c0_hi + c0_lo) - sum(c * t ** m for m, c in enumerate(coeffs, start=1))
        a = np.vstack([t ** m for m in range(j, DEGREE + 1)]).T * w[:, None]
        sol, *_ = np.linalg.lstsq(a, rest * w, rcond=None)
        coeffs.append(float(f32(sol[0])))
    return [mid, c0_hi, c0_lo] + coeffs


def worst_ulp(i, row):
    lo, hi = interval(i)
    if lo >= 16:
        return None
    u = np.linspace(lo, min(hi, 16.0), 301).astype(np.float32)
    ref = np.array([target(float(x)) for x in u])
    got = evaluate(row, u).astype(np.float64)
    ulp = 2.0 ** (np.floor(np.log2(ref)) - 23)
    return float(np.max(np.abs(got - ref) / ulp))


def main():
    rows = [fit(i) for i in range(32)]
    worst = 0.0
    for i, row in enumerate(rows):
        e = worst_ulp(i, row)
        if e is not None:
            worst = max(worst, e)
            print("// interval %2d [%6.2f, %6.2f): %.3f ulp" % ((i,) + interval(i) + (e,)))
    print("// worst %.3f ulp" % worst)
    names = ["mid", "c0 (high part)", "c0 (low part)"] + ["c%d" % j for j in range(1, DEGREE + 1)]
    for j, name in enumerate(names):
        vals = ["%.9ef" % f32(r[j]) for r in rows]
        lines = ["     " + ", ".join(vals[k:k + 4]) + "," for k in range(0, 32, 4)]
        print("    {/* %s */\n%s}," % (name, "\n".join(lines)))


if __name__ == "__main__":
    main()
