"""The error function ``erf(x) = 2/sqrt(pi) int_0^x exp(-t^2) dt``, element-wise (NumPy has none).

The algorithm and coefficients of fdlibm's ``s_erf.c`` (Sun Microsystems 1993,
version 1.3 95/01/18, http://www.netlib.org/fdlibm/s_erf.c; glibc's and musl's
``erf`` are the same code), applied to whole arrays: each branch is evaluated on the
elements in its range (the second one, where most inputs fall, on all of them first
and then replaced elsewhere: :func:`erf`). With ``s = |x|``:

* ``s < 2^-28``: ``x + efx x`` (``efx = 2/sqrt(pi) - 1``), scaled by 8 so that a
  subnormal ``x`` keeps its bits;
* ``s < 0.84375``: ``x + x P(x^2) / Q(x^2)``, a rational approximation of
  ``(erf(x) - x) / x`` whose error is below ``2^-57.90`` (fdlibm);
* ``s < 1.25``: ``erx + P(s - 1) / Q(s - 1)``, ``erx = erf(1)`` rounded to float
  (24 bits), error below ``2^-59.06``;
* ``s < 6``: ``1 - exp(-z^2 - 0.5625) exp((z - s)(z + s) + R(1/s^2) / S(1/s^2)) / s``,
  where ``R/S`` approximates ``log(erfc(s) s) + s^2 + 0.5625`` on ``[1.25, 1/0.35)``
  and on ``[1/0.35, 6)`` (errors below ``2^-62.57`` and ``2^-61.52``) and ``z`` is ``s``
  with its 32 low bits cleared, so that ``z^2`` is exact and ``exp(-s^2)`` keeps
  full precision;
* ``s >= 6`` (and ``+-inf``): ``+-1`` (``1 - erf(6) < 2e-17``, half an ulp of 1);
* NaN stays NaN.

The sign is put back with ``copysign`` (``erf`` is odd; ``erf(-0) = -0``).

The same bits as Python's ``math.erf`` on glibc (tests/test_erf.py: 0 differences on
4e6 points; within 1 ulp wherever the C library's ``erf`` is another correctly
rounded one): the polynomials are summed in glibc's order (:func:`_poly`) and the
tail's ``exp`` is the C library's (:func:`_exp`). This matters beyond the last bit: a GELU network
trained with lrp_ref's earlier ``np.vectorize(math.erf)`` retrains to the same
weights (the shipped sentiment transformer, tests/test_sentiment_transformer.py;
12 epochs of Adam turn one-ulp differences of GELU into different weights).
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray

#: erf(1) rounded to 24 bits (fdlibm's ``erx``, 0x3FEB0AC1 60000000).
ERX = 8.45062911510467529297e-01
#: 8 (2/sqrt(pi) - 1) (fdlibm's ``efx8``), for |x| < 2^-28.
EFX8 = 1.02703333676410069053e+00
#: (erf(x) - x) / x ~ PP(x^2) / QQ(x^2) on [0, 0.84375); coefficients lowest degree first.
PP = (1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02,
      -5.77027029648944159157e-03, -2.37630166566501626084e-05)
QQ = (1.0, 3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03,
      1.32494738004321644526e-04, -3.96022827877536812320e-06)
#: erf(1 + s) - erx ~ PA(s) / QA(s) on [0.84375, 1.25) - 1.
PA = (-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01,
      3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02,
      -2.16637559486879084300e-03)
QA = (1.0, 1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02,
      1.26171219808761642112e-01, 1.36370839120290507362e-02, 1.19844998467991074170e-02)
#: log(erfc(x) x) + x^2 + 0.5625 ~ RA(1/x^2) / SA(1/x^2) on [1.25, 1/0.35).
RA = (-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e+01,
      -6.23753324503260060396e+01, -1.62396669462573470355e+02, -1.84605092906711035994e+02,
      -8.12874355063065934246e+01, -9.81432934416914548592e+00)
SA = (1.0, 1.96512716674392571292e+01, 1.37657754143519042600e+02, 4.34565877475229228821e+02,
      6.45387271733267880336e+02, 4.29008140027567833386e+02, 1.08635005541779435134e+02,
      6.57024977031928170135e+00, -6.04244152148580987438e-02)
#: The same on [1/0.35, 6).
RB = (-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e+01,
      -1.60636384855821916062e+02, -6.37566443368389627722e+02, -1.02509513161107724954e+03,
      -4.83519191608651397019e+02)
SB = (1.0, 3.03380607434824582924e+01, 3.25792512996573918826e+02, 1.53672958608443695994e+03,
      3.19985821950859553908e+03, 2.55305040643316442583e+03, 4.74528541206955367215e+02,
      -2.24409524465858183362e+01)
#: The branch boundaries as fdlibm tests them (on the high 32 bits of |x|): 2^-28, 0.84375,
#: 1.25, the double of high word 0x4006DB6E (1/0.35 rounded up to it) and 6.
TINY, SMALL, MID = 2.0 ** -28, 0.84375, 1.25
TAIL = np.array(0x4006DB6E00000000, dtype=np.uint64).view(np.float64).item()
HUGE = 6.0


def _exp(v: Array) -> Array:
    """The C library's ``exp`` (``math.exp``'s bits): the real part of NumPy's complex
    ``exp`` at ``v + 0i``, which is the C library's ``cexp``, ``exp(v) cos(0) = exp(v)``
    (glibc). NumPy's real ``exp`` is its own SIMD code and differs from ``math.exp`` in the
    last bit on ~5% of arguments, and so would ``erf`` on ``|x| >= 1.25``; calling
    ``math.exp`` element by element kept the bits at 12x the time (tests/test_erf.py
    checks the bits)."""
    return np.exp(v.astype(np.complex128)).real


def _poly(c: tuple[float, ...], t: Array, t2: Array, t4: Array) -> Array:
    """``sum_k c_k t^k`` as glibc's ``s_erf.c`` evaluates it (not Horner's rule): pairs
    ``c_2k + c_2k+1 t`` times ``t^2k`` (``t^4 = t^2 t^2``, ``t^6 = t^4 t^2``, ``t^8 = t^4 t^4``),
    summed from ``k = 0`` up. The same roundings, so the same bits as ``math.erf``."""
    powers = (None, t2, t4, t4 * t2 if len(c) > 6 else None, t4 * t4 if len(c) > 8 else None)
    total = c[0] + t * c[1]
    for k in range(2, len(c), 2):
        total += powers[k // 2] * ((c[k] + t * c[k + 1]) if k + 1 < len(c) else c[k])
    return total


def _ratio(P: tuple[float, ...], Q: tuple[float, ...], t: Array) -> Array:
    """``P(t) / Q(t)``, both by :func:`_poly` on the same powers of ``t``."""
    t2 = t * t
    t4 = t2 * t2
    numerator = _poly(P, t, t2, t4)
    numerator /= _poly(Q, t, t2, t4)
    return numerator


def _tail(s: Array, R: tuple[float, ...], S: tuple[float, ...]) -> Array:
    """``1 - erfc(s)`` on ``[1.25, 6)``, ``erfc(s) = exp(-s^2 - 0.5625 + R/S) / s``."""
    z = (s.view(np.uint64) & np.uint64(0xFFFFFFFF00000000)).view(np.float64)  # z^2 exact
    r = _exp(-z * z - 0.5625) * _exp((z - s) * (z + s) + _ratio(R, S, 1 / (s * s)))
    return 1 - r / s


#: Elements per block of the first branch: its temporaries (256 KB each) stay in the cache
#: and the allocator serves them again, where whole-array ones are fresh pages every time.
BLOCK = 32768


def erf(x: Any) -> Array:
    """``erf(x)`` element-wise in float64 (any real input is converted): ``math.erf``'s bits.

    The branch ``2^-28 <= |x| < 0.84375`` (three quarters of a GELU's inputs) is
    evaluated on every element, block by block, without gathering; the other
    elements are then gathered, a block of them at a time, and replaced, branch by
    branch (module docstring). On them the first result is discarded: it may
    overflow, hence ``errstate``; NaN goes through it as NaN. (Measured on a
    197 x 3072 standard normal input over sqrt 2: 30.8 ms a call with every branch
    gathered in each block of the input and ``math.exp`` per element, 10.7 ms now;
    ViT-B/16's GELU inputs, 94% of them in the second branch, about 7 ms.)
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating) or x.dtype.itemsize > 8:
        x = x.astype(np.float64)           # integers, bool, long double: converted whole
    flat = x.ravel()                       # float16/32 are converted block by block
    out = np.empty(flat.shape, np.float64)
    rest = []
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, flat.size, BLOCK):
            block = flat[start:start + BLOCK].astype(np.float64, copy=False)
            part = out[start:start + BLOCK]
            np.multiply(block, _ratio(PP, QQ, block * block), out=part)
            part += block
            s = np.abs(block)
            rest.append(np.flatnonzero((s >= SMALL) | (s < TINY)) + start)
    rest = np.concatenate(rest) if rest else np.empty(0, np.intp)
    for start in range(0, rest.size, BLOCK):
        index = rest[start:start + BLOCK]
        out[index] = _other_branches(flat[index].astype(np.float64, copy=False))
    return out.reshape(x.shape)


def _other_branches(x: Array) -> Array:
    """:func:`erf` where ``|x| < 2^-28`` or ``|x| >= 0.84375``."""
    s = np.abs(x)
    out = np.empty_like(x)
    pick = s < TINY
    out[pick] = 0.125 * (8 * x[pick] + EFX8 * x[pick])
    pick = (s >= SMALL) & (s < MID)
    out[pick] = np.copysign(ERX + _ratio(PA, QA, s[pick] - 1), x[pick])
    pick = (s >= MID) & (s < TAIL)
    out[pick] = np.copysign(_tail(s[pick], RA, SA), x[pick])
    pick = (s >= TAIL) & (s < HUGE)
    out[pick] = np.copysign(_tail(s[pick], RB, SB), x[pick])
    pick = s >= HUGE
    out[pick] = np.copysign(1.0, x[pick])
    return out


#: Elements per call of :func:`by_blocks`: a few of :data:`BLOCK`, so that each call of
#: :func:`erf` still gathers its other branches in one block.
OUTER_BLOCK = 4 * BLOCK


def by_blocks(f: Any, x: Array) -> Array:
    """``f(x)`` in ``x``'s dtype, ``f`` applied to one block of ``x.ravel()`` at a time (each
    result cast on assignment, as ``f(x).astype(x.dtype)``): for an ``f`` computed in
    float64 on float32 input, no float64 array of the whole size is formed."""
    flat = x.ravel()
    out = np.empty(flat.shape, x.dtype)
    for start in range(0, flat.size, OUTER_BLOCK):
        out[start:start + OUTER_BLOCK] = f(flat[start:start + OUTER_BLOCK])
    return out.reshape(x.shape)
