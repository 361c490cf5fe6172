"""The numbers behind fastdl's math, in one place for every backend: the polynomial and rational
fits of the vectorizable exp / log / tanh / erf (see ``numba/vmath.py`` for the methods and their
measured errors), the constants of the activations, and the counter-based generator's.

Pure data: the numba backend reads these names when it compiles, and ``setup.py`` writes them into
a C++ header for the Cython backend (:func:`cpp_header`), so both evaluate the same fits.
Coefficients are listed lowest degree first.
"""
import math

# ---------------------------------------------------------------- exp, expm1, log
LOG2E = 1.4426950408889634
# ln2 = hi + lo; hi has trailing zero bits, so k*hi is exact for every k reached here.
LN2_HI32, LN2_LO32 = 0.693145751953125, 1.428606765330187e-06
LN2_HI64, LN2_LO64 = 0.6931471803691238, 1.9082149292705877e-10
# expm1(r) = r + r²/2 + r³ q(r) on |r| <= ln2/2; Chebyshev fits, relative error 1e-9 / 1e-18.
EXPM1_Q32 = (0.1666666716337204, 0.041666556149721146, 0.00833332072943449,
             0.0013926175888627768, 0.00019882690685335547)
EXPM1_Q64 = (0.16666666666666669, 0.041666666666666664, 0.008333333333330065,
             0.0013888888888886554, 0.00019841269863040545, 2.4801587317135164e-05,
             2.7557268480310024e-06, 2.755728298405588e-07, 2.5100375832561234e-08,
             2.091122972975856e-09)
# float32 e^r on |r| <= ln2/2 (and 1% more): degree 6 with c0 = c1 = 1, a minimax fit with each
# coefficient rounded to float32 in turn, relative error 4e-9
EXP_P32 = (1.0, 1.0, 0.4999999701976776, 0.16666513681411743, 0.04166729375720024,
           0.00836959108710289, 0.001388673554174602)
# log(1+f) = f - f²/2 + s (f²/2 + R(s²)), s = f / (2 + f): fdlibm's / musl's minimax R(z) / z
LOG_R32 = (0.66666662693, 0.40000972152, 0.28498786688, 0.24279078841)
LOG_R64 = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
           2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
           1.479819860511658591e-01)
# float32 tanh x = c P(c²) / Q(c²), c = x clamped to ±9 (beyond, tanh rounds to ±1): P, Q of
# degree 4 / 4 with positive coefficients, fitted with each coefficient rounded to float32 in turn,
# relative error 3e-8
TANH_P32 = (1.0, 0.13385631144046783, 0.003500886494293809, 2.0689007214969024e-05,
            1.3450836000572508e-08)
TANH_Q32 = (1.0, 0.4671895503997803, 0.025897584855556488, 0.0003293992776889354,
            7.819043617018906e-07)
# erf(x) = x + x P(x²) on |x| <= 1 / 0.75 (Chebyshev fits, relative error 1.3e-9 / 8e-19)
ERF_P32 = (0.12837916612625122, -0.3761262595653534, 0.11283594369888306, -0.02685421146452427,
           0.005189087241888046, -0.000801686430349946, 7.875874871388078e-05)
ERF_P64 = (0.1283791670955126, -0.37612638903183715, 0.11283791670952596, -0.026866170644428485,
           0.005223977615420539, -0.0008548326188759752, 0.00012055289567541706,
           -1.4924196305569617e-05, 1.643068417974155e-06, -1.5940066854661717e-07,
           1.1472499701094691e-08)
# float32 erf beyond 1: erfc(a) = e^{S(a - 2.5) - a²} on [1, 3.93] (erf rounds to 1 beyond);
# S fitted to log(erfc(a)) + a², absolute error < 2e-9
ERF_S32 = (-1.556815266609192, -0.35268068313598633, 0.05610625818371773, -0.010858450084924698,
           0.0021654213778674603, -0.00042022322304546833, 7.718468987150118e-05,
           -1.3284042324812617e-05, 1.666447701609286e-06)
# erfcx(a) = e^{a²} erfc(a) for a >= 0, up to where erfc underflows (10.25 / 27.3):
# float32: P(a) / Q(a) of degree 4 / 5, all coefficients positive (so Horner's sums do not cancel),
# fitted with each coefficient rounded to float32 in turn, relative error 1.4e-8;
# float64: W(y) / (1 + 2a), y = (a - K) / (a + K), K = 4 (Weideman's form, W a Chebyshev fit of
# degree 22, relative error 1.2e-17)
ERFCX_P32 = (1.0, 1.2451696395874023, 0.7386563420295715, 0.2325642853975296, 0.03348955884575844)
ERFCX_Q32 = (1.0, 2.373549222946167, 2.4169108867645264, 1.338521122932434, 0.41223281621932983,
             0.05935809761285782)
SQRT1_2 = 0.7071067811865476  # 1/√2: normal_tail's erfcx argument
ERFC_K64 = 4.0
ERFC_W64 = (1.2329951186255526, -0.13962111684056283, 0.015379652102621225, 0.06809705425473195,
            -0.10103906603638212, 0.09373283499695562, -0.06633036581080073, 0.03716751556039361,
            -0.016197734068137334, 0.005031969769427061, -0.000757773277416026,
            -0.0001992555488219761, 0.00015062197006674788, -2.4403149482077205e-05,
            -1.1224076731817858e-05, 5.7181323323262435e-06, 3.0027247744395825e-07,
            -8.359072083251654e-07, 6.351906535547641e-08, 1.1624772096494892e-07,
            -7.837865916306315e-09, -1.4078643475972477e-08, -1.9456064972434173e-09)

# ---------------------------------------------------------------- activations
INV_SQRT2PI = 0.3989422804014327  # 1/sqrt(2*pi)
TWO_SQRT2_PI = 1.5957691216057308  # 2*sqrt(2/pi): gelu_tanh uses sigma(2u) = (1 + tanh u)/2
GELU_CUBIC = 0.044715

# ---------------------------------------------------------------- counter-based random bits
GAMMA = 0x9E3779B97F4A7C15  # 2^64 / golden ratio, splitmix64's increment
MIX1 = 0xBF58476D1CE4E5B9  # splitmix64's finalizer (Stafford's mix 13)
MIX2 = 0x94D049BB133111EB
# gaussian noise's cos(2πu) = -sin(2πw): the Taylor coefficients of sin(2πw) in w, odd powers up
# to 21 (for |w| <= 1/4 the first omitted term is below 3e-16: one polynomial for both dtypes)
SIN_2PI = tuple((-1) ** k * (2 * math.pi) ** (2 * k + 1) / math.factorial(2 * k + 1)
                for k in range(11))


def cpp_header():
    """C++ source declaring every constant above as ``constexpr`` in namespace ``fdl::c``: tuples
    become ``double`` arrays, integers ``uint64_t``, floats ``double`` (each exact: the shortest
    repr of a double reads back as the same double)."""
    lines = ["// Generated by setup.py from fastdl/_kernels/coefficients.py: edit that file instead.",
             "#pragma once", "#include <cstdint>", "namespace fdl { namespace c {"]
    for name, value in globals().items():
        if not name.isupper():
            continue
        if isinstance(value, tuple):
            items = ", ".join(repr(float(v)) for v in value)
            lines.append(f"constexpr double {name}[{len(value)}] = {{{items}}};")
        elif isinstance(value, int):
            lines.append(f"constexpr uint64_t {name} = {value:#x}ULL;")
        else:
            lines.append(f"constexpr double {name} = {float(value)!r};")
    lines.append("}}  // namespace fdl::c")
    return "\n".join(lines) + "\n"
