"""Local Gi* in numpy: the statistic matches esda's, p-values agree within Monte-Carlo error."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from geolabel.errors import ReviewError
from geolabel.review.gistar import local_gstar


def _grid(side: int) -> sp.csr_array:
    """Rook adjacency of a side x side grid."""
    n = side * side
    rows, cols = [], []
    for r in range(side):
        for c in range(side):
            i = r * side + c
            for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                rr, cc = r + dr, c + dc
                if 0 <= rr < side and 0 <= cc < side:
                    rows.append(i)
                    cols.append(rr * side + cc)
    return sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(n, n))


class TestLocalGStar:
    def test_z_matches_the_formula_and_finds_the_planted_cluster(self):
        side = 15
        adj = _grid(side)
        x = np.random.default_rng(0).random(side * side)
        hot = [r * side + c for r in range(3, 6) for c in range(3, 6)]
        x[hot] += 2.0
        g = local_gstar(x, adj, permutations=499, seed=1)
        # By hand for unit 0 (a corner: itself and two neighbours).
        n, w = len(x), 3.0
        s = np.sqrt((x**2).mean() - x.mean() ** 2)
        local = x[0] + x[1] + x[side]
        expected = (local - x.mean() * w) / (s * np.sqrt((n * w - w * w) / (n - 1)))
        assert g.z[0] == pytest.approx(expected)
        centre = 4 * side + 4
        assert g.z[centre] > 3 and g.p_high[centre] <= 0.01
        cold = [i for i in range(n) if i not in hot and g.z[i] < 0]
        assert np.median(g.p_high[cold]) > 0.5

    def test_same_as_esda(self):
        esda = pytest.importorskip("esda.getisord")
        libpysal = pytest.importorskip("libpysal")
        adj = _grid(8)
        x = np.random.default_rng(3).random(64)
        x[:10] += 1.0
        w = libpysal.weights.WSP(adj).to_W()
        w.transform = "B"
        ours = local_gstar(x, adj, permutations=999, seed=0)
        # Analytic z only: esda's permutations would compile numba kernels (slow, see module).
        e = esda.G_Local(x, w, transform="B", star=True, permutations=0)
        np.testing.assert_allclose(ours.z, e.Zs, atol=1e-10)

    def test_seeded_and_isolated_units(self):
        adj = sp.csr_array(np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
        x = np.array([1.0, 2.0, 3.0, 0.5])
        a = local_gstar(x, adj, permutations=99, seed=5)
        b = local_gstar(x, adj, permutations=99, seed=5)
        np.testing.assert_array_equal(a.p_high, b.p_high)
        assert a.p_high[2] == 1.0 and a.p_high[3] == 1.0  # no neighbours: never significant

    @pytest.mark.parametrize(
        ("values", "perms", "match"),
        [
            ([1.0, 2.0], 99, "at least 3 units"),
            ([1.0, 1.0, 1.0], 99, "vary"),
            ([1.0, 2.0, 3.0], 10, "at least 99"),
            ([1.0, np.nan, 3.0], 99, "finite"),
        ],
    )
    def test_bad_input(self, values, perms, match):
        n = len(values)
        with pytest.raises(ReviewError, match=match):
            local_gstar(np.array(values), sp.csr_array((n, n)), permutations=perms)

    def test_shape_mismatch(self):
        with pytest.raises(ReviewError, match="neighbour matrix"):
            local_gstar(np.arange(4.0), sp.csr_array((3, 3)))
