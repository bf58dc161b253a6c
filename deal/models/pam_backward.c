/* Backward pass of probability attention on the CPU, using its symmetry.
 *
 * PAM is attention with q = k = v = X (N tokens x NC classes, scale 1):
 * O = diag(Z)^-1 G X with G_ij = exp(x_i . x_j) and Z_i = sum_j G_ij. G is
 * symmetric, and so is the gradient's kernel. With u_i = dO_i / Z_i and
 * b_i = (dO_i . O_i) / Z_i:
 *
 *   dX_k = sum_j G_kj t_kj x_j + sum_j G_kj u_j,
 *   t_kj = u_k . x_j + x_k . u_j - b_k - b_j            (t_kj = t_jk)
 *
 * so one pass over the upper-triangle blocks of G adds each block's
 * contribution to its rows and, transposed, to its columns: half the exps and
 * about 7 NC multiply-adds per pair, where the generic flash backward does
 * all N x N pairs with 5 matrix products (dQ, dK, dV, dP and the energies).
 * The centred t (the b terms inside) keeps float32 cancellation at the level
 * of the dense formula. Energies are shifted by max_i |x_i|^2 (softmax is
 * unchanged), so no exp overflows; the caller uses this kernel only when
 * 2 max|x|^2 stays far from exp's float32 range.
 *
 * NC is a compile-time constant (one shared object per class count), so the
 * loops over classes unroll and the per-row values stay in registers. GCC's
 * vector extensions, sized to the CPU's widest registers, compile to
 * AVX-512, AVX or SSE/NEON code. The pool is OpenMP's: loaded beside torch, the
 * library binds to the libgomp that torch already loaded, so both share one
 * set of threads.
 */
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#ifndef NC
#error "compile with -DNC=<number of classes>"
#endif

/* Floats per vector: the CPU's widest registers (512, 256 or 128 bits). */
#if defined(__AVX512F__)
#define W 16
#elif defined(__AVX__)
#define W 8
#else
#define W 4
#endif
#define BS 256 /* block edge: tokens per row/column block */
#ifndef ROWS
/* rows per step of the gradient loop. Measured on 2 AVX-512 cores, backward
 * at 4x11x60x80: 1 row 96 ms, 2 rows 70, 3 rows 66, 4 rows 62, 5 rows 62;
 * at 4x19x86x86: 1 row 372 ms, 3 rows 269, 4 rows 261, 6 rows 237. The
 * accumulators spill past 32 registers, but those spills cost less than the
 * shared loads save. */
#define ROWS (NC <= 12 ? 4 : 6)
#endif

typedef float vf __attribute__((vector_size(4 * W)));
typedef int vi __attribute__((vector_size(4 * W)));
/* for unaligned loads and stores straight from float arrays */
typedef float vf_unaligned __attribute__((vector_size(4 * W), aligned(4), may_alias));

static inline vf vload(const float *p) { return *(const vf_unaligned *)p; }
static inline void vstore(float *p, vf v) { *(vf_unaligned *)p = v; }
static inline vf vsplat(float a) { return (vf){0} + a; }

static inline float hsum(vf v) {
    float s = 0;
    for (int k = 0; k < W; k++) s += v[k];
    return s;
}

/* exp for x <= 0: Cody-Waite reduction to r in [-ln2/2, ln2/2], degree-7
 * Taylor polynomial (truncation 5e-9 relative), scale by 2^k through the
 * exponent bits. Inputs below -87 are clamped (no denormals). */
static inline vf vexp(vf x) {
    const vf lo = vsplat(-87.0f);
    vi below = x < lo;
    x = (vf)(((vi)x & ~below) | ((vi)lo & below));
    vf k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    vf r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    vf p = vsplat(1.0f / 5040);
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    vi bits = (__builtin_convertvector(k, vi) + 127) << 23;
    return p * (vf)bits;
}

/* 1 for lanes j + lane < n, 0 for the padding past the last token */
static inline vf lanes_below(int j, int n) {
    vf valid;
    for (int k = 0; k < W; k++) valid[k] = j + k < n ? 1.0f : 0.0f;
    return valid;
}

/* Arrays with a `t` suffix are class-major (NC rows of np floats, np = N
 * rounded up to W, zero past N) so that a vector holds W tokens. */

/* Z over one block pair; the diagonal block adds its rows only. */
static void rowsum_block(int n, int np, const float *xt, int i0, int i1, int j0, int j1, int diagonal,
                         float shift, float *z) {
    float col[BS] __attribute__((aligned(64)));
    memset(col, 0, sizeof col);
    for (int i = i0; i < i1; i++) {
        float xi[NC];
        for (int c = 0; c < NC; c++) xi[c] = xt[c * np + i];
        vf row = {0};
        for (int j = j0; j < j1; j += W) {
            vf s = vsplat(-shift);
#pragma GCC unroll 64
            for (int c = 0; c < NC; c++) s += xi[c] * vload(xt + c * np + j);
            vf g = vexp(s);
            if (j + W > n) g *= lanes_below(j, n);
            row += g;
            if (!diagonal) vstore(col + (j - j0), vload(col + (j - j0)) + g);
        }
        z[i] += hsum(row);
    }
    if (!diagonal)
        for (int j = j0; j < j1; j++) z[j] += col[j - j0];
}

/* dX over one block pair (before the transpose back), same scheme, ROWS rows
 * at a time: they share each column vector's loads and the column buffer's
 * load and store, which bound the loop more than its multiply-adds. */
static void grad_block(int n, int np, const float *xt, const float *ut, const float *bt, int i0, int i1, int j0,
                       int j1, int diagonal, float shift, float *acc) {
    /* Column sums go to a block-local buffer first: 256-term partial sums
     * keep float32 rounding near that of the row sums. */
    float col[NC * BS] __attribute__((aligned(64)));
    memset(col, 0, sizeof col);
    for (int i = i0; i < i1; i += ROWS) {
        float xi[ROWS][NC], ui[ROWS][NC], bi[ROWS];
        int live[ROWS];
        vf row[ROWS][NC];
        for (int r = 0; r < ROWS; r++) {
            live[r] = i + r < i1; /* a short last step repeats row i with zero weight */
            const int k = live[r] ? i + r : i;
            for (int c = 0; c < NC; c++) {
                xi[r][c] = xt[c * np + k];
                ui[r][c] = ut[c * np + k];
                row[r][c] = (vf){0};
            }
            bi[r] = bt[k];
        }
        for (int j = j0; j < j1; j += W) {
            const vf bj = vload(bt + j);
            vf s[ROWS], t[ROWS], g[ROWS], h[ROWS];
#pragma GCC unroll 8
            for (int r = 0; r < ROWS; r++) {
                s[r] = vsplat(-shift);
                t[r] = -(bi[r] + bj);
            }
#pragma GCC unroll 64
            for (int c = 0; c < NC; c++) {
                const vf xj = vload(xt + c * np + j), uj = vload(ut + c * np + j);
#pragma GCC unroll 8
                for (int r = 0; r < ROWS; r++) {
                    s[r] += xi[r][c] * xj;
                    t[r] += ui[r][c] * xj + xi[r][c] * uj;
                }
            }
            const vf valid = j + W > n ? lanes_below(j, n) : vsplat(1.0f);
#pragma GCC unroll 8
            for (int r = 0; r < ROWS; r++) {
                g[r] = vexp(s[r]) * (live[r] ? valid : (vf){0});
                h[r] = g[r] * t[r];
            }
#pragma GCC unroll 64
            for (int c = 0; c < NC; c++) {
                const vf xj = vload(xt + c * np + j), uj = vload(ut + c * np + j);
                vf add = {0};
#pragma GCC unroll 8
                for (int r = 0; r < ROWS; r++) {
                    row[r][c] += h[r] * xj + g[r] * uj;
                    add += h[r] * xi[r][c] + g[r] * ui[r][c];
                }
                if (!diagonal) {
                    float *cj = col + c * BS + (j - j0);
                    vstore(cj, vload(cj) + add);
                }
            }
        }
        for (int r = 0; r < ROWS; r++)
            if (live[r])
                for (int c = 0; c < NC; c++) acc[c * np + i + r] += hsum(row[r][c]);
    }
    if (!diagonal)
        for (int c = 0; c < NC; c++)
            for (int j = j0; j < j1; j++) acc[c * np + j] += col[c * BS + (j - j0)];
}

/* One pass over every image's upper-triangle block pairs, split evenly over
 * the threads; each thread adds into its own copy of `acc`: batch x np row
 * sums (rowsum) or batch x NC x np gradients. */
static void pass(int rowsum, int batch, int n, int np, float shift, const float *xt, const float *ut,
                 const float *bt, float *acc, int threads) {
    const int nb = (n + BS - 1) / BS;
    const long pairs = (long)nb * (nb + 1) / 2, total = pairs * batch, img = (long)NC * np;
    const long image_stride = rowsum ? np : img, acc_stride = batch * image_stride;
#pragma omp parallel num_threads(threads)
    {
        const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        const long lo = total * tid / nt, hi = total * (tid + 1) / nt;
        for (long w = lo; w < hi; w++) {
            const long b = w / pairs;
            long p = w % pairs;
            int bi = 0;
            while (p >= nb - bi) {
                p -= nb - bi;
                bi++;
            }
            const int bj = bi + (int)p;
            const int i0 = bi * BS, i1 = i0 + BS < n ? i0 + BS : n;
            const int j0 = bj * BS, j1 = j0 + BS < n ? j0 + BS : n;
            float *out = acc + tid * acc_stride + b * image_stride;
            if (rowsum)
                rowsum_block(n, np, xt + b * img, i0, i1, j0, j1, bi == bj, shift, out);
            else
                grad_block(n, np, xt + b * img, ut + b * img, bt + b * np, i0, i1, j0, j1, bi == bj, shift, out);
        }
    }
}

/* x, out (the forward output), dout, dx: batch x n x NC, row-major float32.
 * Returns 0, or 1 when memory runs out (dx untouched). */
int pam_backward(int batch, int n, const float *x, const float *out, const float *dout, float *dx, int threads) {
    if (threads < 1) threads = 1;
    const int np = (n + W - 1) / W * W;
    const long img = (long)NC * np;
    float *xt = calloc((size_t)batch * img, sizeof(float));
    float *ut = calloc((size_t)batch * img, sizeof(float));
    float *bt = calloc((size_t)batch * np, sizeof(float));
    float *z = calloc((size_t)threads * batch * np, sizeof(float));
    float *acc = calloc((size_t)threads * batch * img, sizeof(float));
    if (!xt || !ut || !bt || !z || !acc) {
        free(xt), free(ut), free(bt), free(z), free(acc);
        return 1;
    }

    float shift = 0;
    for (long b = 0; b < batch; b++)
        for (int i = 0; i < n; i++) {
            float sq = 0;
            for (int c = 0; c < NC; c++) {
                const float v = x[(b * n + i) * NC + c];
                xt[b * img + c * np + i] = v;
                sq += v * v;
            }
            if (sq > shift) shift = sq;
        }

    pass(1, batch, n, np, shift, xt, NULL, NULL, z, threads);

    for (long b = 0; b < batch; b++)
        for (int i = 0; i < n; i++) {
            float zi = 0, delta = 0;
            for (int t = 0; t < threads; t++) zi += z[((long)t * batch + b) * np + i];
            const float *o = out + (b * n + i) * NC, *d = dout + (b * n + i) * NC;
            for (int c = 0; c < NC; c++) delta += o[c] * d[c];
            bt[b * np + i] = delta / zi;
            for (int c = 0; c < NC; c++) ut[b * img + c * np + i] = d[c] / zi;
        }

    pass(0, batch, n, np, shift, xt, ut, bt, acc, threads);

    for (long b = 0; b < batch; b++)
        for (int i = 0; i < n; i++)
            for (int c = 0; c < NC; c++) {
                float s = 0;
                for (int t = 0; t < threads; t++) s += acc[(long)t * batch * img + b * img + c * np + i];
                dx[(b * n + i) * NC + c] = s;
            }

    free(xt), free(ut), free(bt), free(z), free(acc);
    return 0;
}
