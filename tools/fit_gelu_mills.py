#!/usr/bin/python3
"""Fits the rational function behind the AVX2/AVX-512 gelu kernels (src/ops/simd/vmath_kernels.h).

S(u) = Phi(-u) * exp(u^2 / 2) on [0, 20] (Phi the standard normal CDF) as P(u) / Q(u), P of
degree 4, Q of degree 5 with Q(0) = 1, minimising the maximum relative error: a linearised
least-squares fit (P - S Q = 0) reweighted by 1 / (S |Q|) and then, Lawson-style, by the
current error. Reference values from mpmath at 40 digits. Prints the coefficients (highest
degree first, as the kernel's mills_p / mills_q arrays want them) and the maximum relative
error in double (about 1.2e-8; the kernel evaluates P / Q in double and rounds once).

Run with Debian's /usr/bin/python3 (numpy, mpmath). Not part of the build.
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 40
LO, HI, NP, NQ = 0.0, 20.0, 4, 5


def target(u):
    u = mp.mpf(u)
    return float(mp.ncdf(-u) * mp.exp(u * u / 2))


def main():
    n = 3000
    k = np.arange(n)
    u = (LO + HI) / 2 + (HI - LO) / 2 * np.cos(np.pi * (k + 0.5) / n)
    u = np.sort(np.concatenate([u, np.linspace(LO, 6.0, 2000)]))
    f = np.array([target(x) for x in u])
    w = 1 / f
    for it in range(30):
        cols_p = np.vstack([u**i for i in range(NP + 1)]).T
        cols_q = -(f[:, None]) * np.vstack([u**j for j in range(1, NQ + 1)]).T
        a = np.hstack([cols_p, cols_q]) * w[:, None]
        sol, *_ = np.linalg.lstsq(a, f * w, rcond=None)
        p = sol[:NP + 1]
        q = np.concatenate([[1.0], sol[NP + 1:]])
        qv = np.polyval(q[::-1], u)
        err = (np.polyval(p[::-1], u) / qv - f) / f
        w = 1 / (f * np.abs(qv))
        if it > 5:
            w = w * np.sqrt(np.abs(err) / np.abs(err).max() + 1e-3)
    print("max relative error", np.abs(err).max())
    print("mills_p =", ", ".join(repr(c) for c in p[::-1]))
    print("mills_q =", ", ".join(repr(c) for c in q[::-1]))


if __name__ == "__main__":
    main()
