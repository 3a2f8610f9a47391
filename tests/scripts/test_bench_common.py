"""The benchmarks' shared FLOP counting and formatting, against counts made by hand."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import bench_common  # noqa: E402


def test_jaxpr_matmul_flops_counts_a_scan_body_length_times():
    x, w = jnp.ones((8, 16)), jnp.ones((16, 16))

    def chain(x, w):
        return jax.lax.scan(lambda y, _: (y @ w, None), x, None, length=5)[0]

    assert bench_common.jaxpr_matmul_flops(chain, x, w) == 5 * 2 * 8 * 16 * 16


def test_xla_flops_of_one_matmul():
    a, b = jnp.ones((32, 64)), jnp.ones((64, 16))
    assert bench_common.xla_flops(jnp.matmul, a, b) == pytest.approx(2 * 32 * 64 * 16, rel=0.01)


def test_ratio_formats_and_handles_a_missing_reference():
    assert bench_common.ratio(3.0, 2.0) == "1.50x"
    assert bench_common.ratio(3.0, None) == "-"
