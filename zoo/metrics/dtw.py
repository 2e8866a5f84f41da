"""Dynamic time warping exactly as tslearn defines it, for many pairs at once.

``DTW(x, y) = sqrt(min over warping paths of sum ||x_i - y_j||^2)`` with no window constraint
(``tslearn.metrics.dtw``, the function the REACT challenge code calls in B23 ``metric/FRD.py``).
A *block* DTW is a weighted sum of DTWs over channel blocks, each block with its own path:
``sum_b w_b * DTW(x[:, block_b], y[:, block_b])`` (the challenge's FRD on the 25-d emotion).

Two backends compute the same numbers (float64 by default):

* ``"numba"`` (CPU). ``block_dtw``/``dtw``: a compiled kernel that runs 8 pairs per SIMD lane
  group and walks the cost matrix in tiles of rows. ``min_block_dtw`` (FRD's minimum over
  neighbours) has its own kernel: one query against a lane group of candidates (4 float64 or 8
  float32 = one 256-bit vector), one channel block at a time, in bands of 16 rows. A band's costs
  are built from exact differences in tiles of 32 columns with the candidate (lane) axis innermost
  and contiguous so LLVM vectorises it, channels summed in tslearn's order (FMA contraction only,
  so results agree with tslearn to ~1e-16 relative and identical frames still cost exactly 0);
  a block that is 0/1 on both sides (REACT's action-unit occurrences) costs popcount(x XOR y) of
  bit-packed frames instead, the same integers exactly. The recursion runs along the band's
  anti-diagonals, one vector of lanes per cell (``_build_dtw_cell``), so the band's rows do not
  wait on each other's left neighbours.
  The minimum is found with exact lower-bound pruning (UCR-suite style, Rakthanmanon et al. 2012):
  every candidate gets a bound per block from the path's fixed end cells and each frame's
  distance to the other series' bounding box (LB_Keogh without a window), over rows and over
  columns; the half lane group of lowest bound is completed first, the others run block by
  block (most bound per unit of work first, ``_block_order``: valence/arousal, then 0/1 action
  units, then expressions), skipped once their bound (exact blocks + bounds of the rest) reaches
  the best so far, and abandoned inside a block once ``min_j D[i, j]`` plus the bounds of the rows
  after i does. The minimum is unchanged.
  Queries are spread over one thread per core (the kernels release the GIL).
* ``"torch"`` (any device, the GPU path): the cost matrices of a chunk of pairs come from
  ``torch.cdist`` without the matmul shortcut (exact differences, so identical frames cost
  exactly 0), and the recursion runs along anti-diagonals, each step one vectorised minimum over
  the three predecessors for the whole chunk. Chunks are sized from ``memory_budget_bytes``.

``backend="auto"`` picks numba for CPU tensors when numba imports, torch otherwise.

``min_block_dtw(..., precision="float32")`` (opt-in) runs the same kernels in float32, 8 candidates
per lane group: ~1.4x faster on one core, ~1e-7 relative error against tslearn (bound and
measurements in ``docs/metrics.md``). ``precision="mixed"`` (opt-in) searches in float32 and
recomputes in float64 only the candidates that a rigorous float32 error bound cannot rule out,
so it returns the float64 numbers (0.98-1.1x the speed of ``"float64"``, depending on the data).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

__all__ = [
    "PRECISIONS",
    "Block",
    "available_backends",
    "block_dtw",
    "dtw",
    "min_block_dtw",
]

# (start, stop, weight): channels [start, stop) with their weight in the block sum.
Block = tuple[int, int, float]

_LANES = 8  # pairs per SIMD vector in the numba kernel (8 float64 = one AVX-512 register)
_TILE_ROWS = 32  # rows of the cost matrix per tile (each reference frame is read once per tile)
_QTILE_ROWS = 16  # FRD kernel: bands of 16 rows, their costs built in tiles of 32 columns (x the lanes)
_QTILE_COLS = 32
_DEFAULT_MEMORY_BUDGET = 1 << 30
_PRECISIONS = {"float64": torch.float64, "float32": torch.float32}  # min_block_dtw's arithmetic
# min_block_dtw's precision modes (default first); "mixed" = the float32 search, then float64 for the candidates
# that could still be the exact minimum (numba; the torch backend computes it in float64)
PRECISIONS = ("float64", "mixed", "float32")
_QUERY_LANES = {torch.float64: 4, torch.float32: 8}  # FRD kernel: candidates per lane group


def _numba_kernels():
    """Compile (once, lazily) the numba kernels; None when numba is not installed."""
    global _KERNELS
    if _KERNELS is not None:
        return _KERNELS or None
    try:
        import numba  # noqa: F401
    except ImportError:
        _KERNELS = False
        return None
    _KERNELS = _build_numba_kernels()
    return _KERNELS


_KERNELS = None


def available_backends() -> tuple[str, ...]:
    """The backends that run here: always ``"torch"``, plus ``"numba"`` when it imports."""
    return ("numba", "torch") if _numba_kernels() else ("torch",)


def _build_numba_kernels():
    from numba import njit

    @njit(nogil=True, cache=False)
    def lanes_dtw(xg, yg, bstart, bstop, weights, ub, out):  # pragma: no cover - compiled
        """DTW of 8 pairs at once. xg (T1, D, 8), yg (T2, D, 8): lane c is pair c.

        out[c] = sum_b w_b sqrt(D_b[T1-1, T2-1]) for lane c, or inf once the lane's lower bound
        sum_b w_b sqrt(min_j D_b[i, j]) reaches ``ub`` (all lanes share one bound). Costs are
        summed channel by channel in order, as tslearn does, so results match it bit for bit.
        """
        t1 = xg.shape[0]
        t2 = yg.shape[0]
        nb = weights.shape[0]
        inf = np.inf
        prevrow = np.empty((nb, t2, _LANES))  # D_b[i0 - 1, :] for the current tile start i0
        newrow = np.empty((nb, t2, _LANES))
        # colprev[b, r + 1] = D_b[i0 + r, j - 1], colprev[b, 0] = D_b[i0 - 1, j - 1]; colcur for j
        colprev = np.empty((nb, _TILE_ROWS + 1, _LANES))
        colcur = np.empty((nb, _TILE_ROWS + 1, _LANES))
        cst = np.empty(_LANES)
        alive = np.ones(_LANES, dtype=np.bool_)
        for i0 in range(0, t1, _TILE_ROWS):
            rows = min(_TILE_ROWS, t1 - i0)
            colprev[:] = inf
            if i0 == 0:
                colprev[:, 0, :] = 0.0  # cell (0, 0) = its cost + 0
            for j in range(t2):
                for b in range(nb):
                    for c in range(_LANES):
                        colcur[b, 0, c] = inf if i0 == 0 else prevrow[b, j, c]
                    for r in range(rows):
                        for c in range(_LANES):
                            cst[c] = 0.0
                        for d in range(bstart[b], bstop[b]):
                            for c in range(_LANES):
                                diff = xg[i0 + r, d, c] - yg[j, d, c]
                                cst[c] += diff * diff
                        for c in range(_LANES):
                            up = colcur[b, r, c]
                            diag = colprev[b, r, c]
                            left = colprev[b, r + 1, c]
                            m = up if up < diag else diag
                            m = m if m < left else left
                            colcur[b, r + 1, c] = cst[c] + m
                    for c in range(_LANES):
                        newrow[b, j, c] = colcur[b, rows, c]
                tmp = colprev
                colprev = colcur
                colcur = tmp
            tmp = prevrow
            prevrow = newrow
            newrow = tmp
            if ub < inf and i0 + rows < t1:
                any_alive = False
                for c in range(_LANES):
                    if alive[c]:
                        lb = 0.0
                        for b in range(nb):
                            rm = inf
                            for j in range(t2):
                                if prevrow[b, j, c] < rm:
                                    rm = prevrow[b, j, c]
                            lb += weights[b] * math.sqrt(rm)
                        if lb >= ub:
                            alive[c] = False
                        else:
                            any_alive = True
                if not any_alive:
                    for c in range(_LANES):
                        out[c] = inf
                    return
        for c in range(_LANES):
            if alive[c]:
                total = 0.0
                for b in range(nb):
                    total += weights[b] * math.sqrt(prevrow[b, t2 - 1, c])
                out[c] = total
            else:
                out[c] = inf

    @njit(nogil=True, cache=False)
    def pairs(x, y, bstart, bstop, weights, out):  # pragma: no cover - compiled
        """out[p] = block DTW of x[p] and y[p]; x (P, T1, D), y (P, T2, D)."""
        npairs, t1, dim = x.shape
        t2 = y.shape[1]
        ngroups = (npairs + _LANES - 1) // _LANES
        for g in range(ngroups):
            xg = np.empty((t1, dim, _LANES))
            yg = np.empty((t2, dim, _LANES))
            res = np.empty(_LANES)
            p0 = g * _LANES
            for c in range(_LANES):
                p = min(p0 + c, npairs - 1)  # pad the last group with copies of its last pair
                for t in range(t1):
                    for d in range(dim):
                        xg[t, d, c] = x[p, t, d]
                for t in range(t2):
                    for d in range(dim):
                        yg[t, d, c] = y[p, t, d]
            lanes_dtw(xg, yg, bstart, bstop, weights, np.inf, res)
            for c in range(min(_LANES, npairs - p0)):
                out[p0 + c] = res[c]

    return {"pairs": pairs, "query_min": {}}


def _query_kernel(lanes: int):
    """The FRD kernel for ``lanes`` candidates per lane group, compiled on first use."""
    kernels = _numba_kernels()["query_min"]
    if lanes not in kernels:
        kernels[lanes] = _build_query_kernel(lanes)
    return kernels[lanes]

def _build_row_bounds():
    from numba import njit

    @njit(nogil=True, cache=False)
    def row_bounds(xa, yb, lo, hi, start, stop, out):  # pragma: no cover - compiled
        """out[i] <= the cost (channels [start, stop)) of the cells any warping path of xa against yb
        visits in row i: the first and last rows hold the path's fixed end cells (0, 0) and
        (T1 - 1, T2 - 1) exactly, every other row the squared distance of xa[i] to yb's bounding box
        [lo, hi] (LB_Keogh with an unconstrained window, Keogh & Ratanamahatana 2005). float64."""
        t1, t2 = xa.shape[0], yb.shape[0]
        for i in range(1, t1 - 1):
            s = 0.0
            for d in range(start, stop):
                v = float(xa[i, d])
                if v > hi[d]:
                    s += (v - hi[d]) * (v - hi[d])
                elif v < lo[d]:
                    s += (lo[d] - v) * (lo[d] - v)
            out[i] = s
        s = 0.0
        for d in range(start, stop):
            e = float(xa[0, d]) - float(yb[0, d])
            s += e * e
        out[0] = s
        if t1 > 1:
            s = 0.0
            for d in range(start, stop):
                e = float(xa[t1 - 1, d]) - float(yb[t2 - 1, d])
                s += e * e
            out[t1 - 1] = s

    return row_bounds


def _build_popcount():
    """llvm.ctpop on uint64 as a numba function: LLVM vectorises it (one vpopcntq with AVX-512
    VPOPCNTDQ, a nibble table lookup with AVX2)."""
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def popcount(typingctx, value):  # noqa: ARG001 - numba's intrinsic signature
        if value != types.uint64:
            return None

        def codegen(context, builder, signature, args):  # noqa: ARG001
            return builder.ctpop(args[0])

        return types.uint64(types.uint64), codegen

    return popcount


def _build_dtw_cell(lanes: int):
    """One cell of ``lanes`` lanes as a numba function written in LLVM IR: vectors of ``lanes`` values
    (numba leaves the superword vectoriser off, and a loop of 4 is too short for its loop vectoriser)::

        flat[at : at + L] = cost[cost_at : cost_at + L]
                            + min(flat[at - width : ...], flat[at - width - L : ...], flat[at - L : ...])

    i.e. D = c + min(up, diag, left) for a row-major buffer of rows ``width`` values apart, lanes
    innermost. min is exact and c + min(...) is one rounding: the same numbers as scalar code."""
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def dtw_cell(typingctx, flat, cost, at, width, cost_at):  # noqa: ARG001 - numba's intrinsic signature
        if not (isinstance(flat, types.Array) and isinstance(cost, types.Array) and flat.ndim == cost.ndim == 1
                and flat.dtype == cost.dtype and isinstance(flat.dtype, types.Float)):
            return None

        def codegen(context, builder, signature, args):
            buf = context.make_array(signature.args[0])(context, builder, args[0])
            costs = context.make_array(signature.args[1])(context, builder, args[1])
            at, width, cost_at = args[2], args[3], args[4]
            item = context.get_value_type(signature.args[0].dtype)
            vector = ir.VectorType(item, lanes).as_pointer()
            size = signature.args[0].dtype.bitwidth // 8

            def load(base, index):
                return builder.load(builder.bitcast(builder.gep(base.data, [index]), vector), align=size)

            above = builder.sub(at, width)
            up = load(buf, above)
            diag = load(buf, builder.sub(above, ir.Constant(at.type, lanes)))
            left = load(buf, builder.sub(at, ir.Constant(at.type, lanes)))
            low = builder.select(builder.fcmp_ordered("<", up, diag), up, diag)
            low = builder.select(builder.fcmp_ordered("<", low, left), low, left)
            builder.store(builder.fadd(load(costs, cost_at), low),
                          builder.bitcast(builder.gep(buf.data, [at]), vector), align=size)
            return context.get_dummy_value()

        return types.void(flat, cost, types.intp, types.intp, types.intp), codegen

    return dtw_cell


def _build_lane_group(lanes: int, row_bounds, popcount):
    """The kernels that run one channel block for ``lanes`` candidates at a time (a compile-time
    constant: 4 float64 or 8 float32 fill one 256-bit vector); the arithmetic type follows the
    arrays passed in (float64 or float32)."""
    from numba import njit

    L = lanes  # noqa: N806 - closure constant, frozen into the compiled code
    R = _QTILE_ROWS  # noqa: N806
    dtw_cell = _build_dtw_cell(lanes)

    @njit(nogil=True, cache=False, boundscheck=False, fastmath={"contract"})
    def group_block(x, yg, start, stop, base, weight, suffix, ub, xbits, ybits, rows, cst,
                    out):  # pragma: no cover
        """Accumulated DTW cost of channels [start, stop) of one query x (T1, D) against L references
        packed as yg (D, T2 * L), yg[d, j * L + c] = frame j, channel d of reference c.

        out[c] = D[T1 - 1, T2 - 1] of lane c (squared, before the square root), or inf once lane c's
        lower bound ``base[c] + weight * sqrt(min_j D[i, j] + suffix[i, c])`` reaches ``ub``: every
        warping path crosses row i, so what it has cost by then is >= min_j D[i, j], and the rows
        after i cost >= suffix[i, c] (see ``row_bounds``); ``base`` bounds the other blocks.

        The matrix is walked in bands of R = _QTILE_ROWS rows. A band's costs are built in tiles of
        _QTILE_COLS columns from exact differences, the lane axis innermost and contiguous so LLVM
        vectorises it; channels are summed in tslearn's order (FMA contraction changes only the last
        bit of each sum, never an exact 0). The recursion D = c + min(up, diag, left) runs along the
        band's anti-diagonals, one ``dtw_cell`` (all L lanes) per cell: the R cells of a step are
        independent, so their dependency chains overlap instead of waiting on the left neighbour
        (1.8x faster than row by row at L = 4). ``rows[r, L + j * L + c]`` holds D of band row r - 1
        (slot 0 = last row of the previous band); ``rows[r, c]`` is the inf column left of the matrix.

        Binary blocks (every value 0 or 1 on both sides: REACT's action-unit occurrences) come with
        ``xbits`` (T1,) / ``ybits`` (T2 * L,): each frame's channels as the bits of a uint64, so a
        cell's cost is popcount(x XOR y), the number of differing channels: the same integer the
        sum of squared differences gives exactly (empty ``xbits``: the channels are summed).
        """
        t1 = x.shape[0]
        nl = yg.shape[1]
        t2 = nl // L
        inf = np.inf
        alive = np.ones(L, dtype=np.bool_)
        for r in range(_QTILE_ROWS + 1):
            for k in range(nl + L):
                rows[r, k] = inf
        for c in range(L):
            rows[0, c] = 0.0  # D[-1, -1] = 0: the path starts at (0, 0)
        width, cwidth = rows.shape[1], cst.shape[1]  # row strides (the buffers may be sized for more lanes)
        flat, costs = rows.reshape(rows.size), cst.reshape(cst.size)
        for i0 in range(0, t1, R):
            nr = min(R, t1 - i0)
            step = 0  # next anti-diagonal: cells (r, step - r)
            for j0 in range(0, t2, _QTILE_COLS):
                k0 = j0 * L
                nk = min(_QTILE_COLS, t2 - j0) * L
                if xbits.shape[0] > 0:
                    yb = ybits[k0:k0 + nk]
                    for r in range(nr):
                        xv = xbits[i0 + r]
                        cr = cst[r, k0:k0 + nk]
                        for k in range(nk):
                            cr[k] = popcount(xv ^ yb[k])
                    d = stop  # no channel left to sum
                else:
                    for r in range(nr):
                        cr = cst[r, k0:k0 + nk]
                        for k in range(nk):
                            cr[k] = 0.0
                    d = start
                # channels in order, as tslearn sums them; eight (then four, then one) per pass to
                # cut the loads and stores of the accumulator row
                while d + 8 <= stop:
                    y0, y1 = yg[d, k0:k0 + nk], yg[d + 1, k0:k0 + nk]
                    y2, y3 = yg[d + 2, k0:k0 + nk], yg[d + 3, k0:k0 + nk]
                    y4, y5 = yg[d + 4, k0:k0 + nk], yg[d + 5, k0:k0 + nk]
                    y6, y7 = yg[d + 6, k0:k0 + nk], yg[d + 7, k0:k0 + nk]
                    for r in range(nr):
                        xr = x[i0 + r]
                        x0, x1, x2, x3 = xr[d], xr[d + 1], xr[d + 2], xr[d + 3]
                        x4, x5, x6, x7 = xr[d + 4], xr[d + 5], xr[d + 6], xr[d + 7]
                        cr = cst[r, k0:k0 + nk]
                        for k in range(nk):
                            a0, a1, a2, a3 = x0 - y0[k], x1 - y1[k], x2 - y2[k], x3 - y3[k]
                            a4, a5, a6, a7 = x4 - y4[k], x5 - y5[k], x6 - y6[k], x7 - y7[k]
                            cr[k] = (((((((cr[k] + a0 * a0) + a1 * a1) + a2 * a2) + a3 * a3) + a4 * a4)
                                      + a5 * a5) + a6 * a6) + a7 * a7
                    d += 8
                while d + 4 <= stop:
                    y0, y1 = yg[d, k0:k0 + nk], yg[d + 1, k0:k0 + nk]
                    y2, y3 = yg[d + 2, k0:k0 + nk], yg[d + 3, k0:k0 + nk]
                    for r in range(nr):
                        x0, x1, x2, x3 = x[i0 + r, d], x[i0 + r, d + 1], x[i0 + r, d + 2], x[i0 + r, d + 3]
                        cr = cst[r, k0:k0 + nk]
                        for k in range(nk):
                            a0, a1, a2, a3 = x0 - y0[k], x1 - y1[k], x2 - y2[k], x3 - y3[k]
                            cr[k] = (((cr[k] + a0 * a0) + a1 * a1) + a2 * a2) + a3 * a3
                    d += 4
                while d < stop:
                    yd = yg[d, k0:k0 + nk]
                    for r in range(nr):
                        xv = x[i0 + r, d]
                        cr = cst[r, k0:k0 + nk]
                        for k in range(nk):
                            diff = xv - yd[k]
                            cr[k] += diff * diff
                    d += 1
                # the anti-diagonals whose cells now all have their costs: up to the tile's last
                # column in row 0 (then the band's end, after its last tile)
                last = j0 + nk // L - 1 if j0 + _QTILE_COLS < t2 else t2 + nr - 2
                while step <= last:
                    if nr == R and R - 1 <= step < t2:  # all R rows (the common case: a fixed loop)
                        for r in range(R):
                            j = step - r
                            dtw_cell(flat, costs, (r + 1) * width + L + j * L, width, r * cwidth + j * L)
                    else:
                        for r in range(max(0, step - t2 + 1), min(nr, step + 1)):
                            j = step - r
                            dtw_cell(flat, costs, (r + 1) * width + L + j * L, width, r * cwidth + j * L)
                    step += 1
            for k in range(nl + L):
                rows[0, k] = rows[nr, k]
            if ub < inf and i0 + nr < t1:
                i = i0 + nr - 1
                any_alive = False
                for c in range(L):
                    if alive[c]:
                        rm = inf
                        for k in range(L + c, nl + L, L):
                            if rows[0, k] < rm:
                                rm = rows[0, k]
                        if base[c] + weight * math.sqrt(rm + suffix[i, c]) >= ub:
                            alive[c] = False
                        else:
                            any_alive = True
                if not any_alive:
                    for c in range(L):
                        out[c] = inf
                    return
        for c in range(L):
            out[c] = rows[0, nl + c] if alive[c] else inf

    @njit(nogil=True, cache=False)
    def run_group(xq, y, grp, m, b, bstart, bstop, weights, lbsq, ub, rlo, rhi, yg, base, suffix, rowb,
                  xbits, ybits, ybg, rows, cst, res):  # pragma: no cover - compiled
        """Block b of the candidates grp[:m] (lanes padded with the last one) -> res. ``xbits`` (T1,):
        the query's bit masks of block b if it is binary (else empty), ``ybits`` (references, T2) the
        references' (packed into ``ybg`` like ``yg``)."""
        t1 = xq.shape[0]
        t2 = y.shape[1]
        nb = weights.shape[0]
        for c in range(L):
            n, k = grp[min(c, m - 1), 0], grp[min(c, m - 1), 1]
            if xbits.shape[0] > 0:
                for t in range(t2):
                    ybg[t * L + c] = ybits[k, t]
            else:  # only the block's channels: the kernel reads no others
                for t in range(t2):
                    for d in range(bstart[b], bstop[b]):
                        yg[d, t * L + c] = y[k, t, d]
            other = 0.0
            for bb in range(nb):
                if bb != b:
                    other += weights[bb] * math.sqrt(lbsq[bb, n])
            base[c] = other
            if ub < np.inf:
                row_bounds(xq, y[k], rlo[k], rhi[k], bstart[b], bstop[b], rowb)
                acc = 0.0
                for i in range(t1 - 1, -1, -1):
                    suffix[i, c] = acc
                    acc += rowb[i]
        group_block(xq, yg, bstart[b], bstop[b], base, weights[b], suffix, ub, xbits, ybg, rows, cst, res)

    return run_group


def _build_query_kernel(lanes: int):
    """FRD's kernel: ``lanes`` candidates per lane group, half as many for the first group."""
    from numba import njit

    L = lanes  # noqa: N806 - closure constants, frozen into the compiled code
    L0 = max(1, lanes // 2)  # noqa: N806
    row_bounds = _build_row_bounds()
    popcount = _build_popcount()
    run_group = _build_lane_group(L, row_bounds, popcount)
    run_first = run_group if L0 == L else _build_lane_group(L0, row_bounds, popcount)

    @njit(nogil=True, cache=False)
    def query_min(x, y, rlo, rhi, offsets, candidates, bstart, bstop, weights, order, slack, prune,
                  known, binary, xbits, ybits, out, vals, blockvals):  # pragma: no cover - compiled
        """out[q] = min over candidates[offsets[q]:offsets[q+1]] of block DTW(x[q], y[cand]).

        Exact lower-bound pruning; the minimum never changes. Every candidate starts with a bound
        per block (``row_bounds`` over its rows and over its columns, the larger). The L0 candidates
        of lowest bound are computed in full (the first best-so-far); the others go through the
        blocks one at a time (``order``: fewest channels first), in order of their bound: skipped
        once the bound (exact values of the blocks done, bounds of the rest) reaches the best so
        far, abandoned inside a block as soon as its running bound does (``group_block``).
        ``slack`` (relative) absorbs the rounding of the bounds: a candidate is only dropped when
        its bound exceeds best * (1 + slack), so it could never have been the minimum.

        For the mixed precision mode: ``known[offsets[q] + n, b] >= 0`` is block b's D of candidate n,
        already known (not computed again); ``vals[offsets[q] + n]`` = candidate n's final value (all
        blocks done) or, if it was dropped, the bound it was dropped with (>= the best so far then);
        ``blockvals[offsets[q] + n, b]`` = its block b's D where computed, else -1.

        ``binary[b]``: block b is 0/1 in all queries and references; then ``xbits[q, b]`` (T1,) /
        ``ybits[n, b]`` (T2,) hold its channels as bit masks (uint64; ``_bit_masks``)."""
        nq, t1, dim = x.shape
        t2 = y.shape[1]
        nb = weights.shape[0]
        inf = np.inf
        # scratch in the arithmetic type of the inputs (float64: exact mode; float32: fast mode)
        yg = np.empty((dim, t2 * L), x.dtype)
        yg0 = np.empty((dim, t2 * L0), x.dtype)
        rows = np.empty((_QTILE_ROWS + 1, (t2 + 1) * L), x.dtype)
        cst = np.empty((_QTILE_ROWS, t2 * L), x.dtype)
        res = np.empty(L)
        base = np.empty(L)
        suffix = np.zeros((t1, L))
        rowb = np.empty(t1)
        colb = np.empty(t2)
        xlo = np.empty(dim)
        xhi = np.empty(dim)
        grp = np.empty((L, 2), dtype=np.int64)  # lanes: (position in the query's list, reference)
        ybg = np.empty(t2 * L, np.uint64)
        ybg0 = np.empty(t2 * L0, np.uint64)
        nobits = np.empty(0, np.uint64)
        for q in range(nq):
            xq = x[q]
            for d in range(dim):
                lo_, hi_ = inf, -inf
                for t in range(t1):
                    v = float(xq[t, d])
                    lo_ = min(lo_, v)
                    hi_ = max(hi_, v)
                xlo[d], xhi[d] = lo_, hi_
            cands = candidates[offsets[q]:offsets[q + 1]]
            nc = cands.shape[0]
            # lbsq[b, n]: squared lower bound of block b, replaced by the exact D_b once computed
            lbsq = np.zeros((nb, nc))
            done = np.zeros((nb, nc), dtype=np.bool_)
            lb = np.zeros(nc)
            for n in range(nc):
                k = cands[n]
                for b in range(nb):
                    if weights[b] == 0.0:
                        done[b, n] = True  # contributes 0 * sqrt(D) = 0 whatever D is
                    elif known[offsets[q] + n, b] >= 0.0:
                        lbsq[b, n] = known[offsets[q] + n, b]
                        done[b, n] = True
                    elif prune:
                        row_bounds(xq, y[k], rlo[k], rhi[k], bstart[b], bstop[b], rowb)
                        row_bounds(y[k], xq, xlo, xhi, bstart[b], bstop[b], colb)
                        lbsq[b, n] = max(rowb.sum(), colb.sum())
                    lb[n] += weights[b] * math.sqrt(lbsq[b, n])
            visit = np.argsort(lb)
            best = inf
            dead = np.zeros(nc, dtype=np.bool_)
            for phase in range(2):
                lanes = L0 if phase == 0 else L
                lo_pos = 0 if phase == 0 else min(L0, nc)
                hi_pos = min(L0, nc) if phase == 0 else nc
                for s in range(nb):
                    b = order[s]
                    if weights[b] == 0.0:
                        continue
                    pos = lo_pos
                    while pos < hi_pos:
                        thr = best * (1.0 + slack) if prune else inf
                        m = 0
                        while pos < hi_pos and m < lanes:
                            n = visit[pos]
                            pos += 1
                            if dead[n] or done[b, n]:
                                continue
                            if lb[n] >= thr:
                                dead[n] = True
                                continue
                            grp[m, 0], grp[m, 1] = n, cands[n]
                            m += 1
                        if m == 0:
                            break
                        xb = xbits[q, b] if binary[b] else nobits
                        yb = ybits[:, b]
                        if phase == 0:
                            run_first(xq, y, grp, m, b, bstart, bstop, weights, lbsq, thr, rlo, rhi, yg0, base,
                                      suffix, rowb, xb, yb, ybg0, rows, cst, res)
                        else:
                            run_group(xq, y, grp, m, b, bstart, bstop, weights, lbsq, thr, rlo, rhi, yg, base,
                                      suffix, rowb, xb, yb, ybg, rows, cst, res)
                        for c in range(m):
                            n = grp[c, 0]
                            if res[c] == inf:
                                # abandoned inside the block: its bound there reached thr
                                lb[n] = max(lb[n], thr)
                                dead[n] = True
                                continue
                            lbsq[b, n] = res[c]
                            done[b, n] = True
                            total = 0.0  # in block order, as the exact sum is formed
                            complete = True
                            for bb in range(nb):
                                total += weights[bb] * math.sqrt(lbsq[bb, n])
                                complete = complete and done[bb, n]
                            lb[n] = total
                            if complete:
                                best = min(best, total)
                            elif prune and total >= thr:
                                dead[n] = True
                # whatever is complete and alive now is a candidate for the minimum (this also
                # covers candidates whose blocks all have weight 0)
                for pos in range(lo_pos, hi_pos):
                    n = visit[pos]
                    complete = not dead[n]
                    for bb in range(nb):
                        complete = complete and done[bb, n]
                    if complete:
                        best = min(best, lb[n])
            out[q] = best
            for n in range(nc):
                vals[offsets[q] + n] = lb[n]
                for b in range(nb):
                    blockvals[offsets[q] + n, b] = lbsq[b, n] if done[b, n] and weights[b] != 0.0 else -1.0

    return query_min


# --------------------------------------------------------------------------- validation


def _as_series_batch(name: str, value, *, ndim: int = 3) -> torch.Tensor:
    tensor = torch.as_tensor(value) if not isinstance(value, torch.Tensor) else value
    if tensor.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array (pairs, time, channels), got shape {tuple(tensor.shape)}")
    if not (tensor.dtype.is_floating_point or tensor.dtype in (torch.int32, torch.int64, torch.bool)):
        raise ValueError(f"{name}: expected a real-valued array, got dtype {tensor.dtype}")
    if tensor.shape[1] < 1 or tensor.shape[2] < 1:
        raise ValueError(f"{name}: every series needs at least one frame and one channel, got shape {tuple(tensor.shape)}")
    if tensor.dtype.is_floating_point and not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name}: contains NaN or inf")
    return tensor


def _normalise_blocks(blocks: Sequence[Block] | None, dim: int) -> tuple[np.ndarray, np.ndarray, list[Block]]:
    """Blocks -> (block index of every channel, weights). Channels outside all blocks are dropped
    (block index -1 is never produced: every channel must be covered exactly once)."""
    if blocks is None:
        blocks = [(0, dim, 1.0)]
    blocks = [(int(s), int(e), float(w)) for s, e, w in blocks]
    block_of = np.full(dim, -1, dtype=np.int64)
    for b, (start, stop, weight) in enumerate(blocks):
        if not 0 <= start < stop <= dim:
            raise ValueError(f"blocks: block {b} = ({start}, {stop}) is not a channel range within 0..{dim}")
        if weight < 0 or not math.isfinite(weight):
            raise ValueError(f"blocks: block {b} has weight {weight}; expected a finite weight >= 0")
        if (block_of[start:stop] >= 0).any():
            raise ValueError(f"blocks: block {b} = ({start}, {stop}) overlaps an earlier block")
        block_of[start:stop] = b
    if (block_of < 0).any():
        missing = np.flatnonzero(block_of < 0).tolist()
        raise ValueError(f"blocks: channels {missing} are in no block; blocks must cover all {dim} channels")
    return block_of, np.array([w for _, _, w in blocks], dtype=np.float64), blocks


def _run_threaded(n: int, granule: int, work: Callable[[int, int], None],
                  progress: Callable[[int], None] | None = None) -> None:
    """Run ``work(start, stop)`` over [0, n) in small chunks on one thread per core (the numba
    kernels release the GIL), reporting finished items to ``progress``."""
    threads = max(1, torch.get_num_threads())
    chunk = max(granule, min(64, -(-n // (4 * threads))))
    chunk = -(-chunk // granule) * granule
    spans = [(s, min(n, s + chunk)) for s in range(0, n, chunk)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(work, s, e) for s, e in spans]
        for future, (s, e) in zip(futures, spans, strict=True):
            future.result()
            if progress is not None:
                progress(e - s)


def _bounds(blocks: list[Block]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([s for s, _, _ in blocks], dtype=np.int64),
            np.array([e for _, e, _ in blocks], dtype=np.int64))


def _lanes_for(compute: torch.dtype) -> int:
    """Candidates per lane group of the FRD kernel: one 256-bit vector (4 float64, 8 float32).
    Small groups let pruning skip more; on this AMD EPYC (512-bit ops run as two 256-bit halves)
    4 float64 lanes cost the same per candidate as 8 (docs/metrics.md)."""
    return _QUERY_LANES[compute]


def _block_order(blocks: list[Block], binary: np.ndarray | None = None) -> np.ndarray:
    """The order the FRD kernel runs a candidate's blocks in: most bound per unit of work first, so
    that the expensive blocks are only started for the candidates the cheap ones did not rule out.
    A block adds about w sqrt(n) to a candidate's value (a DTW of n comparable channels grows like
    sqrt(n)) and costs about 3 + n channel passes (the recursion costs about three; a binary block's
    cost is one popcount). For REACT's emotion: valence/arousal (2 channels, weight 1), then the
    action units when they are 0/1 (else last), then the expressions."""
    binary = np.zeros(len(blocks), dtype=bool) if binary is None else binary
    score = [w * math.sqrt(e - s) / (3 + (1 if bit else e - s)) for (s, e, w), bit in zip(blocks, binary, strict=True)]
    return np.argsort(-np.array(score), kind="stable").astype(np.int64)


def _resolve_backend(backend: str, device: torch.device) -> str:
    if backend not in ("auto", "numba", "torch"):
        raise ValueError(f"backend: expected 'auto', 'numba' or 'torch', got {backend!r}")
    if backend == "auto":
        return "numba" if device.type == "cpu" and _numba_kernels() else "torch"
    if backend == "numba" and not _numba_kernels():
        raise ValueError("backend: 'numba' was asked for but numba is not installed (pip install numba)")
    return backend


# --------------------------------------------------------------------------- torch backend


def _wavefront(cost: torch.Tensor) -> torch.Tensor:
    """Accumulated DTW cost D[T1-1, T2-1] of a batch of cost matrices (B, T1, T2), along
    anti-diagonals; buffers are indexed by row i (offset 1, index 0 is the inf boundary)."""
    batch, t1, t2 = cost.shape
    flat = cost.reshape(batch, t1 * t2)
    bufs = [torch.full((batch, t1 + 1), math.inf, dtype=cost.dtype, device=cost.device) for _ in range(3)]
    tmp = torch.empty((batch, t1), dtype=cost.dtype, device=cost.device)
    prev2, prev1, cur = bufs
    prev1[:, 1] = flat[:, 0]
    for d in range(1, t1 + t2 - 1):
        lo, hi = max(0, d - t2 + 1), min(d, t1 - 1)
        n = hi - lo + 1
        # cell (i, d - i) sits at flat index i * t2 + d - i = d + i * (t2 - 1): a strided view
        step = max(t2 - 1, 1)
        diag = flat[:, d + lo * (t2 - 1): d + hi * (t2 - 1) + 1: step]
        t = tmp[:, :n]
        torch.minimum(prev1[:, lo:hi + 1], prev1[:, lo + 1:hi + 2], out=t)  # up, left
        torch.minimum(t, prev2[:, lo:hi + 1], out=t)  # diagonal
        torch.add(t, diag, out=cur[:, lo + 1:hi + 2])
        if hi + 2 <= t1:  # keep the cell right of the diagonal's end at inf for the next step
            cur[:, hi + 2:hi + 3] = math.inf
        prev2, prev1, cur = prev1, cur, prev2
    return prev1[:, t1]


def _torch_block_pairs(x: torch.Tensor, y: torch.Tensor, blocks: list[Block]) -> torch.Tensor:
    total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for start, stop, weight in blocks:
        cost = torch.cdist(x[..., start:stop], y[..., start:stop],
                           compute_mode="donot_use_mm_for_euclid_dist").square_()
        total += weight * _wavefront(cost).sqrt()
    return total


def _chunk_size(t1: int, t2: int, itemsize: int, memory_budget_bytes: int) -> int:
    # cdist result + its square in place + a diagonal temp: ~2 cost matrices per pair
    per_pair = 2 * t1 * t2 * itemsize + 8 * (t1 + t2) * itemsize
    return max(1, int(memory_budget_bytes // per_pair))


# --------------------------------------------------------------------------- FRD search (numba)


class _QuerySearch:
    """The numba FRD kernel set up for one arithmetic (the type of ``references``): the references'
    channel ranges for the envelope bounds and the pruning slack, computed once; called on a run
    of queries in the same arithmetic."""

    def __init__(self, references: np.ndarray, t1: int, blocks: list[Block], weights: np.ndarray, prune: bool,
                 lanes: int | None = None) -> None:
        compute = torch.float64 if references.dtype == np.float64 else torch.float32
        self.r = np.ascontiguousarray(references)
        self.kernel = _query_kernel(lanes or _lanes_for(compute))
        self.bounds, self.weights, self.prune = _bounds(blocks), weights, prune
        self.rlo, self.rhi = self.r.min(axis=1).astype(np.float64), self.r.max(axis=1).astype(np.float64)
        # relative margin for rounding in the bounds: far above the few ulps a sum of T1 + T2
        # terms can be off by, far below any gap that matters; float32 accumulates ~1e-4 at T = 750
        self.slack = 16 * (t1 + self.r.shape[1] + self.r.shape[2]) * float(np.finfo(self.r.dtype).eps)
        self.blocks = blocks
        self.ref_binary = np.array([_is_binary(self.r[..., a:b]) and b - a <= 64 for a, b, _ in blocks])
        self.ref_bits = _bit_masks(self.r, blocks, self.ref_binary)

    def __call__(self, queries: np.ndarray, offsets: np.ndarray, candidates: np.ndarray, out: np.ndarray,
                 known: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """out[q] = min over the candidates of queries[q] (CSR ``offsets`` into ``candidates``) ->
        (every candidate's value or the bound it was dropped with, its per-block D or -1): the
        kernel's ``vals`` and ``blockvals``. ``known`` (candidates, blocks): D values not to compute
        again (-1: unknown)."""
        nb = self.weights.shape[0]
        if known is None:
            known = np.full((candidates.shape[0], nb), -1.0)
        vals, blockvals = np.empty(candidates.shape[0]), np.empty((candidates.shape[0], nb))
        binary = self.ref_binary & np.array([_is_binary(queries[..., a:b]) for a, b, _ in self.blocks])
        self.kernel(np.ascontiguousarray(queries, dtype=self.r.dtype), self.r, self.rlo, self.rhi, offsets,
                    candidates, *self.bounds, self.weights, _block_order(self.blocks, binary), self.slack, self.prune,
                    known, binary, _bit_masks(queries, self.blocks, binary), self.ref_bits, out, vals, blockvals)
        return vals, blockvals


class _MixedPrecision:
    """``precision="mixed"``: the float32 search, then float64 for the candidates whose float64 value
    could still be the minimum (the bound is in ``__call__``). Blocks on which float32 arithmetic
    is exact (``_float32_exact_grid``: REACT's 0/1 action units, when the queries are 0/1 too) keep
    their float32 D, which is then bit for bit the float64 one."""

    def __init__(self, r64: np.ndarray, t1: int, blocks: list[Block], weights: np.ndarray, prune: bool) -> None:
        self.r64, self.blocks, self.weights, self.t1, self.prune = r64, blocks, weights, t1, prune
        self.search64_full: _QuerySearch | None = None  # the float64 search, for data float32 cannot hold
        self.r32 = r64.astype(np.float32)
        self.search32 = _QuerySearch(self.r32, t1, blocks, weights, prune)
        # the recomputation usually has one candidate per query: one lane, no padding
        self.search64 = _QuerySearch(r64, t1, blocks, weights, prune, lanes=1)
        self.cells = t1 + r64.shape[1] - 1  # cells on the longest warping path
        self.ref_error = _rounding_error(r64, self.r32, blocks).max(axis=0)
        self.ref_magnitude = [float(np.abs(r64[..., a:b]).max()) for a, b, _ in blocks]
        self.ref_on_grid: dict[tuple[int, int], bool] = {}

    def __call__(self, q64: np.ndarray, offsets: np.ndarray, candidates: np.ndarray, out: np.ndarray) -> None:
        """out[q] = the float64 minimum for the queries ``q64`` (CSR ``offsets`` into ``candidates``).

        Which candidates float64 recomputes, by a rigorous bound in the square-root domain. For one
        block of n channels, T1 x T2 frames, u = 2^-24, let t = the exact DTW, t' = the exact DTW of
        the float32-rounded inputs, v = the float32 kernel's value:
        * rounding the inputs: a path's cost is the Euclidean norm of its frame differences, so by
          the triangle inequality |t' - t| <= sqrt(T1 + T2 - 1) (E_x + E_y), E = the largest norm
          of a frame's rounding error (computed exactly, ``_rounding_error``; 0 for float32 inputs
          such as react2023's);
        * float32 arithmetic: a cell's cost (n squared differences summed in order) has relative
          error <= gamma_(n + 3) (Higham's gamma_k = k u / (1 - k u)); a path adds at most
          T1 + T2 - 1 non-negative cells, one rounding each, and min is exact and monotone, so by
          induction over the cells D32 = D' (1 + theta), |theta| <= gamma_(T1 + T2 + n + 2) = rho.
          The square root halves that; the other half covers the float64 square root and weighted
          sum (~1e-16) and the float64 envelope bounds inside a dropped candidate's value. Gradual
          underflow adds <= 2^-149 per operation: sqrt((T1 + T2) (n + 3) 2^-149) per block.
        So (1 - rho) t - delta <= v <= (1 + rho) t + delta (delta: the weighted absolute terms,
        times 1 + rho), and the bound a dropped candidate was dropped with is <= (1 + rho) t + delta
        as well. The float64 values are within kappa (the same gamma with u = 2^-53) of t. The
        float64 minimiser c64 then has v(c64) <= (1 + rho) (1 + kappa) / ((1 - rho) (1 - kappa))
        (best32 + delta) + delta; every candidate at or below that is recomputed, so the float64
        minimum over those is the float64 minimum over all. Blocks on which float32 is exact have
        rho = delta = 0 (and keep their float32 D); with pruning slack 2e-3 far above rho (~1e-4 at
        T = 750), dropped candidates practically never qualify, so usually one per query does."""
        magnitude = max(float(np.abs(q64).max()), *self.ref_magnitude)
        # float32 could overflow (|v| > ~1e16), or the series are so long (T1 + T2 > 1.6e5 frames) that
        # its error bound would keep most candidates: the float64 search alone
        if self.cells * self.r64.shape[2] * (2 * magnitude) ** 2 > 1e36 or self.cells * 2.0 ** -24 > 1e-2:
            if self.search64_full is None:
                self.search64_full = _QuerySearch(self.r64, self.t1, self.blocks, self.weights, self.prune)
            self.search64_full(q64, offsets, candidates, out)
            return
        q32 = q64.astype(np.float32)
        vals32, blockvals32 = self.search32(q32, offsets, candidates, out)
        exact = np.array([self._exact_block(q64[..., a:b], k) for k, (a, b, _) in enumerate(self.blocks)])
        inexact = ~exact & (self.weights > 0)
        if not inexact.any():  # float32 was exact everywhere: these are the float64 values already
            return
        widths = np.array([b - a for a, b, _ in self.blocks])
        k = self.cells + int(widths[inexact].max()) + 3
        rho, kappa = _gamma(k, 2.0 ** -24), _gamma(k, 2.0 ** -53)
        w = np.where(inexact, self.weights, 0.0)
        underflow = float(np.sum(w * np.sqrt((self.cells + 1) * (widths + 3) * 2.0 ** -149)))
        delta = (_rounding_error(q64, q32, self.blocks) + self.ref_error) * math.sqrt(self.cells) @ w
        delta = (delta + underflow) * (1 + rho)
        factor = (1 + rho) * (1 + kappa) / ((1 - rho) * (1 - kappa))
        limit = (factor * (out + delta) + delta) * (1 + 1e-12)  # 1e-12: this line's own rounding
        keep = vals32 <= np.repeat(limit, np.diff(offsets))
        kept = np.add.reduceat(keep, offsets[:-1])
        known = np.where(exact[None, :], blockvals32[keep], -1.0)
        self.search64(q64, np.concatenate([[0], np.cumsum(kept)]), candidates[keep], out, known)

    def _exact_block(self, q: np.ndarray, block: int) -> bool:
        """Whether float32 arithmetic is exact on this block of these queries and all references."""
        scale = _float32_exact_grid(max(float(np.abs(q).max()), self.ref_magnitude[block]), self.cells, q.shape[-1])
        if scale is None:
            return False
        if (block, scale) not in self.ref_on_grid:  # the references once per grid (a benign race)
            start, stop, _ = self.blocks[block]
            self.ref_on_grid[block, scale] = _on_grid(self.r64[..., start:stop], scale)
        return self.ref_on_grid[block, scale] and _on_grid(q, scale)


def _is_binary(values: np.ndarray) -> bool:
    """Whether every value is 0 or 1 (REACT's action-unit occurrences)."""
    return bool(((values == 0) | (values == 1)).all())


def _bit_masks(series: np.ndarray, blocks: list[Block], binary: np.ndarray) -> np.ndarray:
    """(S, T, D) series -> (S, blocks, T) uint64: channel start + i of each binary block as bit i
    (zeros for the other blocks; a trailing length of 0 when no block is binary)."""
    s, t = series.shape[:2]
    out = np.zeros((s, len(blocks), t if binary.any() else 0), np.uint64)
    for k, (a, b, _) in enumerate(blocks):
        if binary[k]:
            bits = (series[..., a:b] != 0).astype(np.uint64) << np.arange(b - a, dtype=np.uint64)
            out[:, k] = np.bitwise_or.reduce(bits, axis=-1)
    return out


def _float32_exact_grid(magnitude: float, cells: int, width: int) -> int | None:
    """The finest grid 2^-s on which float32 computes a block's DTW exactly (so equal to float64's,
    bit for bit), for values with |v| <= magnitude; None if there is none. Differences of values
    on the grid are multiples of 2^-s up to 2 magnitude, squares and every partial sum multiples of
    2^-2s up to cells * width * (2 magnitude)^2: all exact while that is <= 2^24 grid steps
    (float32's significand)."""
    if magnitude == 0:
        return 0
    room = 2.0 ** 24 / (cells * width * (2 * magnitude) ** 2)  # >= 4^s
    return int(math.floor(math.log(room, 4))) if room >= 1 else None


def _on_grid(values: np.ndarray, scale: int) -> bool:
    """Whether every value is a multiple of 2^-scale (multiplying by a power of two is exact)."""
    scaled = values * 2.0 ** scale
    return bool(np.array_equal(scaled, np.rint(scaled)))


def _rounding_error(exact: np.ndarray, rounded: np.ndarray, blocks: list[Block]) -> np.ndarray:
    """(S, T, D) series and their float32 copies -> (S, blocks): max over frames of the norm of the
    block's rounding error (x - fl(x) is exact in float64, Sterbenz); 0 for float32 inputs."""
    out = np.zeros((exact.shape[0], len(blocks)))
    for s in range(0, exact.shape[0], 256):  # in chunks: bounded memory on a full test set
        err = exact[s:s + 256] - rounded[s:s + 256].astype(np.float64)
        if err.any():
            out[s:s + 256] = np.stack([np.sqrt(np.square(err[..., a:b]).sum(-1)).max(-1) for a, b, _ in blocks],
                                      axis=1)
    return out


def _gamma(k: int, unit: float) -> float:
    """Higham's gamma_k = k u / (1 - k u): the relative error bound of k roundings."""
    return k * unit / (1 - k * unit)  # callers keep k u < 0.02


# --------------------------------------------------------------------------- public API


def block_dtw(
    x,
    y,
    blocks: Sequence[Block] | None = None,
    *,
    backend: str = "auto",
    dtype: torch.dtype = torch.float64,
    memory_budget_bytes: int = _DEFAULT_MEMORY_BUDGET,
) -> torch.Tensor:
    """Weighted block DTW of aligned pairs: ``x`` (P, T1, D) against ``y`` (P, T2, D) -> (P,).

    ``blocks``: ``[(start, stop, weight), ...]`` covering all D channels once; ``None`` = one
    block of all channels with weight 1 (plain DTW). Returns ``dtype`` on the inputs' device.
    """
    x = _as_series_batch("x", x)
    y = _as_series_batch("y", y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x, y: expected the same number of pairs, got {x.shape[0]} and {y.shape[0]}")
    if x.shape[2] != y.shape[2]:
        raise ValueError(f"x, y: expected the same number of channels, got {x.shape[2]} and {y.shape[2]}")
    block_of, weights, blocks = _normalise_blocks(blocks, x.shape[2])
    device = x.device
    which = _resolve_backend(backend, device)
    if x.shape[0] == 0:
        return torch.zeros(0, dtype=dtype, device=device)
    if which == "numba":
        xn = np.ascontiguousarray(x.detach().to("cpu", torch.float64).numpy())
        yn = np.ascontiguousarray(y.detach().to("cpu", torch.float64).numpy())
        out = np.empty(xn.shape[0])
        kernel = _numba_kernels()["pairs"]
        bounds = _bounds(blocks)
        # the kernels release the GIL: one thread per core, each on its own run of lane groups
        _run_threaded(xn.shape[0], _LANES,
                      lambda s, e: kernel(xn[s:e], yn[s:e], *bounds, weights, out[s:e]))
        return torch.from_numpy(out).to(device=device, dtype=dtype)
    x = x.detach().to(dtype)
    y = y.to(device=device, dtype=dtype)
    chunk = _chunk_size(x.shape[1], y.shape[1], x.element_size(), memory_budget_bytes)
    parts = [_torch_block_pairs(x[s:s + chunk], y[s:s + chunk], blocks) for s in range(0, x.shape[0], chunk)]
    return torch.cat(parts)


def dtw(x, y, *, backend: str = "auto", dtype: torch.dtype = torch.float64,
        memory_budget_bytes: int = _DEFAULT_MEMORY_BUDGET) -> torch.Tensor:
    """tslearn's ``dtw`` for aligned pairs: ``x`` (P, T1, D), ``y`` (P, T2, D) -> (P,).
    A single pair may be given as (T1, D), (T2, D) and gives a 0-d tensor."""
    single = torch.as_tensor(x).ndim == 2 and torch.as_tensor(y).ndim == 2
    if single:
        x, y = torch.as_tensor(x)[None], torch.as_tensor(y)[None]
    out = block_dtw(x, y, None, backend=backend, dtype=dtype, memory_budget_bytes=memory_budget_bytes)
    return out[0] if single else out


def min_block_dtw(
    queries,
    references,
    offsets,
    candidates,
    blocks: Sequence[Block] | None = None,
    *,
    backend: str = "auto",
    dtype: torch.dtype = torch.float64,
    memory_budget_bytes: int = _DEFAULT_MEMORY_BUDGET,
    progress: Callable[[int], None] | None = None,
    precision: str = "float64",
    prune: bool = True,
) -> torch.Tensor:
    """For every query q: ``min over c in candidates[offsets[q]:offsets[q+1]]`` of
    ``block_dtw(queries[q], references[c])`` -> (Q,).

    ``precision``: the arithmetic (``dtype`` is only the output's type), one of :data:`PRECISIONS`:

    * ``"float64"`` (default): everything in float64; agrees with tslearn to ~1e-15 relative.
    * ``"mixed"``: the same numbers (tested bit for bit). The search (bounds, pruning, every
      candidate's DTW) runs in float32, twice the SIMD width; then float64 recomputes only the
      candidates whose float64 value could still be the minimum by a rigorous error bound
      (``_MixedPrecision.__call__``), usually one per query, reusing blocks on which float32 is
      exact (0/1 action units on both sides). Faster than float64 when pruning leaves many
      candidates to compute (independent samples: 1.06-1.1x), not when it leaves few (samples close
      to one appropriate listener: 0.98x) or the action units are probabilities (0.98-1.04x), so
      not the default (docs/metrics.md).
      The torch backend computes it in float64.
    * ``"float32"``: rounds the inputs to float32 and computes in float32 (8 candidates per vector
      on the numba backend): the fastest, with a relative error against tslearn of typically ~1e-7
      and below 1e-5 on realistic inputs (emotion vectors in [0, 1], 58-d face states; measured in
      ``tests/test_dtw.py`` and ``docs/metrics.md``). Each accumulated cost is a sum of up to
      T1 + T2 non-negative terms, so the relative error grows at worst like (T1 + T2) * 6e-8
      (4.5e-5 at T = 375 + 375). An exact 0 (identical frames) stays exactly 0.

    ``queries`` (Q, T1, D); ``references`` (R, T2, D); ``offsets`` (Q + 1,) non-decreasing with
    ``offsets[0] == 0`` and ``offsets[-1] == len(candidates)`` (CSR layout); every query needs at
    least one candidate. The references are shared: FRD's queries (k, i) all index the one
    listener set. ``progress`` is called with the number of queries finished, chunk by chunk.

    ``prune`` (numba backend): skip and abandon candidates by exact lower bounds (module
    docstring); the minimum is the same either way, ``False`` computes every pair in full (to
    measure the kernel alone). The torch backend always computes every pair.
    """
    queries = _as_series_batch("queries", queries)
    references = _as_series_batch("references", references)
    if queries.shape[2] != references.shape[2]:
        raise ValueError(f"queries, references: expected the same number of channels, got "
                         f"{queries.shape[2]} and {references.shape[2]}")
    offsets_np = np.asarray(torch.as_tensor(offsets).cpu(), dtype=np.int64).reshape(-1)
    cand_np = np.asarray(torch.as_tensor(candidates).cpu(), dtype=np.int64).reshape(-1)
    nq, nr = queries.shape[0], references.shape[0]
    if offsets_np.shape[0] != nq + 1 or offsets_np[0] != 0 or offsets_np[-1] != cand_np.shape[0]:
        raise ValueError(f"offsets: expected {nq + 1} CSR offsets from 0 to len(candidates)={cand_np.shape[0]}")
    counts = np.diff(offsets_np)
    if (counts < 1).any():
        raise ValueError(f"candidates: queries {np.flatnonzero(counts < 1)[:10].tolist()} have no candidate")
    if cand_np.size and (cand_np.min() < 0 or cand_np.max() >= nr):
        raise ValueError(f"candidates: indices must lie in 0..{nr - 1}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    compute = _PRECISIONS[precision] if precision != "mixed" else torch.float64
    block_of, weights, blocks = _normalise_blocks(blocks, queries.shape[2])
    device = queries.device
    which = _resolve_backend(backend, device)
    out = torch.empty(nq, dtype=dtype, device=device)
    if nq == 0:
        return out
    if which == "numba":
        qsrc = queries.detach().cpu()
        t1 = queries.shape[1]
        r64 = np.ascontiguousarray(references.detach().to("cpu", torch.float64).numpy())
        if precision == "mixed":
            search = _MixedPrecision(r64, t1, blocks, weights, prune)
        else:
            search = _QuerySearch(r64.astype(np.float32) if precision == "float32" else r64, t1, blocks, weights,
                                  prune)
        res = np.empty(nq)

        def run(s: int, e: int) -> None:
            lo, hi = offsets_np[s], offsets_np[e]
            search(qsrc[s:e].to(torch.float64).numpy(), offsets_np[s:e + 1] - lo, cand_np[lo:hi], res[s:e])

        _run_threaded(nq, 1, run, progress)
        out.copy_(torch.from_numpy(res))
        return out
    queries = queries.detach().to(compute)
    references = references.to(device=device, dtype=compute)
    q_of = torch.from_numpy(np.repeat(np.arange(nq), counts)).to(device)
    cand = torch.from_numpy(cand_np).to(device)
    out.fill_(math.inf)
    chunk = _chunk_size(queries.shape[1], references.shape[1], queries.element_size(), memory_budget_bytes)
    done_q = 0
    for s in range(0, cand.shape[0], chunk):
        qi, ci = q_of[s:s + chunk], cand[s:s + chunk]
        vals = _torch_block_pairs(queries[qi], references[ci], blocks)
        out.scatter_reduce_(0, qi, vals.to(dtype), reduce="amin")
        if progress is not None:
            finished = int(np.searchsorted(offsets_np, min(s + chunk, cand.shape[0]), side="right")) - 1
            progress(finished - done_q)
            done_q = finished
    return out
