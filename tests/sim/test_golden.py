"""The golden model against the slow reference on random layers of every kind."""

import numpy as np
import pytest

from bitmill import numerics
from bitmill.compiler.ir import (Add, Conv2d, Dense, Flatten, GlobalAvgPool, MaxPool, Requant,
                                 TensorType)
from bitmill.errors import BitmillError
from bitmill.numerics import Encoding
from bitmill.sim import golden
from tests.sim import reference

ACT_ENCS = [Encoding.UNSIGNED, Encoding.SIGNED]


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _rand_on_grid(rng, shape, bits, enc):
    lo, _ = numerics.value_range(bits, enc)
    if enc is Encoding.ODD:
        return lo + 2 * rng.integers(0, 2 ** bits, size=shape)
    vals = lo + rng.integers(0, 2 ** bits, size=shape)
    vals.flat[0] = lo                                      # extremes appear
    vals.flat[-1] = lo + 2 ** bits - 1
    return vals


def _rand_requant(rng, channels, acc_bound, out_bits):
    """Multipliers and shifts that map the accumulator range roughly onto the output."""
    scale = (2.0 ** out_bits) / max(acc_bound, 1) * rng.uniform(0.2, 4.0, channels)
    scale = np.minimum(scale, 30000.0) * rng.choice([-1, 1], channels, p=[0.15, 0.85])
    mult_bits = min(numerics.MULT_BITS, 61 - int(acc_bound).bit_length())   # acc*M fits int64
    mult, shift = numerics.quantize_scales(scale, mult_bits)
    bias = (rng.normal(0, 2.0 ** (out_bits - 2), channels) * 2.0 ** shift).astype(np.int64)
    return Requant(mult, bias, shift)


def _random_weighted(rng, dense: bool):
    w_bits, a_bits = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    if rng.random() < 0.1:                      # wide inputs: float64 and int64 GEMM paths
        a_bits = int(rng.choice([16, 24, 32]))
    w_enc = _pick(rng, list(Encoding))
    a_enc = _pick(rng, ACT_ENCS)
    out_bits = int(rng.integers(1, 17))
    relu = bool(rng.random() < 0.5)
    out_enc = Encoding.UNSIGNED if relu and rng.random() < 0.7 else Encoding.SIGNED
    n = int(rng.integers(1, 3))
    if dense:
        f, o = int(rng.integers(1, 40)), int(rng.integers(1, 9))
        in_t = TensorType((f,), a_bits, a_enc)
        weight = _rand_on_grid(rng, (o, f), w_bits, w_enc)
        probe = Dense("d", ("x",), TensorType((o,), out_bits, out_enc), weight, w_bits, w_enc,
                      Requant(np.ones(o), np.zeros(o), np.zeros(o)), relu)
    else:
        c, o = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        k = int(rng.choice([1, 2, 3, 5]))
        stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, k))
        h, w = int(rng.integers(k, 9)), int(rng.integers(k, 9))
        in_t = TensorType((c, h, w), a_bits, a_enc)
        weight = _rand_on_grid(rng, (o, c, k, k), w_bits, w_enc)
        probe = Conv2d("c", ("x",), TensorType((o,), out_bits, out_enc), weight, w_bits, w_enc,
                       Requant(np.ones(o), np.zeros(o), np.zeros(o)), relu, stride, pad)
    out_t = TensorType(probe.infer_shape([in_t]), out_bits, out_enc)
    req = _rand_requant(rng, weight.shape[0], probe.acc_bound(in_t), out_bits)
    node = type(probe)(**{**vars(probe), "out": out_t, "requant": req})
    assert node.problems([in_t]) == []
    x = _rand_on_grid(rng, (n,) + in_t.shape, a_bits, a_enc)
    return node, [x], [in_t]


def _random_other(rng, kind):
    n, c, h, w = (int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(2, 8)),
                  int(rng.integers(2, 8)))
    bits, enc = int(rng.integers(1, 17)), _pick(rng, ACT_ENCS)
    in_t = TensorType((c, h, w), bits, enc)
    x = _rand_on_grid(rng, (n, c, h, w), bits, enc)
    if kind == "maxpool":
        k = int(rng.integers(1, min(h, w) + 1))
        s, p = int(rng.integers(1, 3)), int(rng.integers(0, k))
        probe = MaxPool("p", ("x",), in_t, k, s, p)
        return MaxPool("p", ("x",), TensorType(probe.infer_shape([in_t]), bits, enc), k, s, p), [x], [in_t]
    if kind == "avgpool":
        out_bits = int(rng.integers(1, 9))
        req = _rand_requant(rng, c, h * w * 2 ** bits, out_bits)
        return GlobalAvgPool("g", ("x",), TensorType((c, 1, 1), out_bits, Encoding.SIGNED), req), [x], [in_t]
    if kind == "flatten":
        return Flatten("f", ("x",), TensorType((c * h * w,), bits, enc)), [x], [in_t]
    b_bits, b_enc = int(rng.integers(1, 17)), _pick(rng, ACT_ENCS)
    b_t = TensorType((c, h, w), b_bits, b_enc)
    xb = _rand_on_grid(rng, (n, c, h, w), b_bits, b_enc)
    shift = int(rng.integers(0, 16))
    node = Add("a", ("x", "y"), TensorType((c, h, w), int(rng.integers(1, 17)), _pick(rng, ACT_ENCS)),
               int(rng.integers(-2 ** 15, 2 ** 15)), int(rng.integers(-2 ** 15, 2 ** 15)),
               int(rng.integers(-2 ** 20, 2 ** 20)), shift, bool(rng.random() < 0.5))
    return node, [x, xb], [in_t, b_t]


@pytest.mark.parametrize("seed", range(120))
def test_random_conv_and_dense_layers_equal_reference(seed):
    rng = np.random.default_rng(seed)
    node, args, types = _random_weighted(rng, dense=seed % 4 == 3)
    got = golden.eval_node(node, args, types)
    np.testing.assert_array_equal(got, reference.eval_node(node, args))


@pytest.mark.parametrize("kind", ["maxpool", "avgpool", "flatten", "add"])
@pytest.mark.parametrize("seed", range(15))
def test_random_other_layers_equal_reference(kind, seed):
    rng = np.random.default_rng(1000 + seed)
    node, args, types = _random_other(rng, kind)
    assert node.problems(types) == []
    got = golden.eval_node(node, args, types)
    np.testing.assert_array_equal(got, reference.eval_node(node, args))


@pytest.mark.parametrize("features,a_bits,path", [(1500, 8, "chunked float32"),
                                                  (33000, 32, "int64")])
def test_long_dense_layers_take_the_wide_paths(features, a_bits, path):
    rng = np.random.default_rng(features)
    in_t = TensorType((features,), a_bits, Encoding.UNSIGNED)
    weight = _rand_on_grid(rng, (3, features), 8, Encoding.SIGNED)
    weight[:, :] = np.where(rng.random(weight.shape) < 0.5, -128, weight)
    bound = numerics.accumulator_bound(features, 8, "signed", a_bits, "unsigned")
    node = Dense("d", ("x",), TensorType((3,), 16, Encoding.SIGNED), weight, 8, Encoding.SIGNED,
                 _rand_requant(rng, 3, bound, 16))
    assert node.problems([in_t]) == []
    x = _rand_on_grid(rng, (2, features), a_bits, Encoding.UNSIGNED)
    x[0] = 2 ** a_bits - 1
    term = 128 * (2 ** a_bits - 1)
    chunk = (golden.FLOAT32_EXACT - 1) // term
    assert (golden.MIN_CHUNK <= chunk < features) == (path == "chunked float32")
    assert (features * term >= golden.FLOAT64_EXACT) == (path == "int64")
    np.testing.assert_array_equal(golden.eval_node(node, [x], [in_t]), reference.eval_node(node, [x]))


@pytest.mark.parametrize("term_bits,k", [(8, 100), (14, 700), (20, 300), (40, 50), (50, 2000)])
def test_exact_gemm_all_paths(term_bits, k):
    """Chunked float32, single float64 and int64 paths all equal exact object arithmetic."""
    rng = np.random.default_rng(term_bits)
    amax, bmax = 2 ** (term_bits // 2), 2 ** (term_bits - term_bits // 2)
    a = rng.integers(-amax, amax + 1, size=(7, k))
    b = rng.integers(-bmax, bmax + 1, size=(k, 5))
    a[0], b[:, 0] = amax, bmax                    # attain the bound in one element
    exact = a.astype(object) @ b.astype(object)
    got = golden.exact_gemm(a.astype(np.float64), b.astype(np.float64), amax * bmax)
    assert (got.astype(np.int64).astype(object) == exact).all()


def test_float32_inexact_without_chunking_is_what_chunking_prevents():
    """The chunking matters: a plain float32 GEMM of the same data is wrong."""
    rng = np.random.default_rng(0)
    a = rng.integers(200, 256, size=(4, 4608)).astype(np.float64)
    b = rng.integers(100, 128, size=(4608, 3)).astype(np.float64)
    exact = a.astype(np.int64) @ b.astype(np.int64)
    naive = (a.astype(np.float32) @ b.astype(np.float32)).astype(np.int64)
    assert not np.array_equal(naive, exact)
    np.testing.assert_array_equal(golden.exact_gemm(a, b, 255 * 127).astype(np.int64), exact)


def test_input_validation():
    from bitmill.compiler import zoo
    g = zoo.build("resnet8", "w2a2")
    with pytest.raises(BitmillError, match=r"expected \(N, 1, 28, 28\)"):
        golden.run(g, np.zeros((1, 3, 28, 28), dtype=np.int64))
    with pytest.raises(BitmillError, match="must lie in 0..255"):
        golden.run(g, np.full((1, 1, 28, 28), 300))
    with pytest.raises(BitmillError, match="must be integers"):
        golden.run(g, np.zeros((1, 1, 28, 28)))


def test_run_all_matches_node_by_node_reference_on_resnet8():
    from bitmill.compiler import zoo
    g = zoo.build("resnet8", "w3a4", seed=3)
    x = np.random.default_rng(0).integers(0, 256, (2, 1, 28, 28))
    values = golden.run_all(g, x)
    g.types()
    for node in g.nodes[1:]:
        if node.op == "conv2d" and node.weight.shape[1] > 16:
            continue                                   # the Python loop is too slow there
        args = [values[i] for i in node.inputs]
        np.testing.assert_array_equal(values[node.name], reference.eval_node(node, args),
                                      err_msg=node.name)
    np.testing.assert_array_equal(golden.run(g, x), values[g.output])


def _graph(*nodes):
    from bitmill.compiler.ir import Graph
    return Graph(nodes, nodes[-1].name, "g").verify()


def test_global_average_pool_is_exact_past_2_to_the_53():
    """Sums of 32-bit values over 2,100 x 2,100 pixels exceed 2^53, where float64 rounds them;
    a bias of minus the sum leaves only the low bits in the output."""
    from bitmill.compiler.ir import Input
    t = TensorType((2, 2100, 2100), 32, Encoding.SIGNED)
    rng = np.random.default_rng(3)
    x = rng.integers(2**31 - 2**10, 2**31, size=(1,) + t.shape)
    x[0, 1] = -x[0, 1] + 1                      # the second channel negative
    sums = [int(v) for v in x.astype(object).sum(axis=(2, 3))[0]]   # exact Python integers
    assert min(abs(s) for s in sums) > 2**53
    bias = np.array([5 - sums[0], -9 - sums[1]])
    pool = GlobalAvgPool("pool", ("input",), TensorType((2, 1, 1), 32, Encoding.SIGNED),
                         Requant(np.array([1, 1]), bias, np.array([0, 0])))
    g = _graph(Input("input", (), t), pool)
    assert golden.run(g, x).reshape(-1).tolist() == [5, -9]


def test_add_with_a_bias_near_the_int64_limit_is_exact_or_refused():
    from bitmill.compiler.ir import Input
    from bitmill.errors import IRError
    t = TensorType((1, 2, 2), 8, Encoding.UNSIGNED)
    x = np.arange(4).reshape(1, 1, 2, 2)
    inp = Input("input", (), t)
    neg = Conv2d("neg", ("input",), TensorType((1, 2, 2), 8, Encoding.SIGNED), np.full((1, 1, 1, 1), -1),
                 2, Encoding.SIGNED, Requant(np.array([1]), np.array([0]), np.array([0])))
    out = TensorType((1, 2, 2), 8, Encoding.SIGNED)
    with pytest.raises(IRError, match=r"a\*mult_a \+ b\*mult_b \+ bias can exceed 2\^62"):
        _graph(inp, neg, Add("add", ("input", "neg"), out, 3, 5, 7 * 2**60, 62))
    g = _graph(inp, neg, Add("add", ("input", "neg"), out, 3, 5, 5 * 2**60, 62))
    got = golden.run(g, x).reshape(-1).tolist()
    want = [min(127, max(-128, (3 * v - 5 * v + 5 * 2**60 + 2**61) >> 62)) for v in range(4)]
    assert got == want == [1, 1, 1, 1]


def test_add_of_a_tensor_with_itself_is_refused():
    from bitmill.compiler.ir import Input
    from bitmill.errors import IRError
    t = TensorType((1, 2, 2), 8, Encoding.UNSIGNED)
    with pytest.raises(IRError, match="adds 'input' to itself"):
        _graph(Input("input", (), t), Add("add", ("input", "input"), t, 1, 1, 0, 0, True))
