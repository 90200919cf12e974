// antialias::max_blur_pool and its backward on CPU: a dense (stride-1) max with implicit -inf (or
// circular) padding, fused with the blur; the backward recomputes each window's first maximum in
// raster order (F.max_pool2d's rule, NaN included) from the saved input: no indices are stored.
#include "common.h"

#include <algorithm>

namespace antialias {
namespace {

struct Plan {
  int64_t H = 0, W = 0, Hd = 0, Wd = 0, kh = 1, kw = 1, dh = 1, dw = 1;
  // NCHW works on the padded plane P (Hp x Wp; the input plane itself when nothing is padded) as
  // one flat array with row pitch Wp: every max tap is then one long contiguous pass.
  int64_t Hp = 0, Wp = 0;
  bool unpadded = true;
  std::vector<int64_t> rsrc;    // (Hp): source row of each padded row, -1 = -inf padding
  std::vector<int32_t> pmap;    // (Hp * Wp) if padded: input offset of each cell of P, -1 = padding
  std::vector<int64_t> th, tw;  // (Hd * kh), (Wd * kw): source of each max tap, -1 = -inf padding
  std::vector<int64_t> prow;    // (Wd + dw * (kw - 1)): source of each cell of a padded input row
  int64_t row_before = 0;       // cells of -inf (or wrapped) padding before the row
  Ell eh, ew;                   // the blur, over the dense max
  Row rw;                       // the horizontal blur as a row plan (NCHW)
};

Plan make_plan(int64_t H, int64_t W, at::IntArrayRef kernel, at::IntArrayRef dilation, at::IntArrayRef max_pad_before,
               at::IntArrayRef max_pad_after, at::TensorList rows, at::IntArrayRef stride, at::IntArrayRef pad_before,
               at::IntArrayRef pad_after, c10::string_view padding_mode) {
  TORCH_CHECK_VALUE(kernel.size() == 2 && dilation.size() == 2 && max_pad_before.size() == 2 &&
                        max_pad_after.size() == 2 && rows.size() == 2 && stride.size() == 2 &&
                        pad_before.size() == 2 && pad_after.size() == 2,
                    "antialias::max_blur_pool: expected 2 values per argument (one per spatial axis).");
  const Pad mode = parse_mode(std::string(padding_mode));
  const bool circular = mode == Pad::Circular;
  Plan p;
  p.H = H;
  p.W = W;
  p.kh = kernel[0];
  p.kw = kernel[1];
  p.dh = dilation[0];
  p.dw = dilation[1];
  p.th = max_taps(H, kernel[0], dilation[0], max_pad_before[0], max_pad_after[0], circular, &p.Hd);
  p.tw = max_taps(W, kernel[1], dilation[1], max_pad_before[1], max_pad_after[1], circular, &p.Wd);
  const int64_t padded = p.Wd + p.dw * (p.kw - 1);
  p.prow.resize(padded);
  p.row_before = max_pad_before[1];
  for (int64_t q = 0; q < padded; ++q) {
    const int64_t s = q - max_pad_before[1];
    p.prow[q] = circular ? source_index(s, W, Pad::Circular) : (s >= 0 && s < W ? s : -1);
  }
  p.eh = blur_table(row_values(rows[0]), p.Hd, pad_before[0], pad_after[0],
                    axis_mode(mode, p.Hd, pad_before[0], pad_after[0]), stride[0]);
  p.ew = blur_table(row_values(rows[1]), p.Wd, pad_before[1], pad_after[1],
                    axis_mode(mode, p.Wd, pad_before[1], pad_after[1]), stride[1]);
  p.rw = row_plan(row_values(rows[1]), p.Wd, pad_before[1], pad_after[1],
                  axis_mode(mode, p.Wd, pad_before[1], pad_after[1]), stride[1]);
  p.Hp = p.Hd + p.dh * (p.kh - 1);
  p.Wp = padded;
  p.unpadded = p.Hp == H && p.Wp == W && max_pad_before[0] == 0 && max_pad_before[1] == 0;
  p.rsrc.resize(p.Hp);
  for (int64_t r = 0; r < p.Hp; ++r) {
    const int64_t s = r - max_pad_before[0];
    p.rsrc[r] = circular ? source_index(s, H, Pad::Circular) : (s >= 0 && s < H ? s : -1);
  }
  if (!p.unpadded) {
    TORCH_CHECK(p.Hp * p.Wp < (int64_t{1} << 31), "antialias::max_blur_pool: planes of more than 2**31 cells are not supported.");
    p.pmap.resize(p.Hp * p.Wp);
    for (int64_t r = 0; r < p.Hp; ++r)
      for (int64_t c = 0; c < p.Wp; ++c)
        p.pmap[r * p.Wp + c] = (p.rsrc[r] < 0 || p.prow[c] < 0) ? -1 : static_cast<int32_t>(p.rsrc[r] * W + p.prow[c]);
  }
  return p;
}

int64_t grain(int64_t work_per_item) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, work_per_item));
}

// Copy input row `src` (W cells) into the padded row `dst` (plan.prow cells), -inf on padding.
template <typename scalar_t>
inline void pad_row(const scalar_t* src, scalar_t* dst, const Plan& p) {
  const scalar_t ninf = -std::numeric_limits<scalar_t>::infinity();
  const int64_t n = static_cast<int64_t>(p.prow.size());
  const int64_t lo = std::min(p.row_before, n), hi = std::min(p.row_before + p.W, n);
  for (int64_t q = lo; q < hi; ++q) dst[q] = src[q - p.row_before];  // interior: a contiguous copy
  for (int64_t q = 0; q < n; ++q) {
    if (q == lo) q = hi;
    if (q >= n) break;
    dst[q] = p.prow[q] < 0 ? ninf : src[p.prow[q]];
  }
}

// The padded plane P of one NCHW input plane: the plane itself, or `buf` filled (-inf or wrapped).
template <typename scalar_t>
const scalar_t* padded_plane(const scalar_t* x, const Plan& p, scalar_t* buf) {
  if (p.unpadded) return x;
  const scalar_t ninf = -std::numeric_limits<scalar_t>::infinity();
  for (int64_t r = 0; r < p.Hp; ++r) {
    scalar_t* dst = buf + r * p.Wp;
    if (p.rsrc[r] < 0) {
      for (int64_t c = 0; c < p.Wp; ++c) dst[c] = ninf;
    } else {
      pad_row(x + p.rsrc[r] * p.W, dst, p);
    }
  }
  return buf;
}

// Length of the flat dense max with pitch Wp (its last row ends at column Wd).
inline int64_t flat_len(const Plan& p) {
  return (p.Hd - 1) * p.Wp + p.Wd;
}

// Dense max of the padded plane P into D (flat, pitch Wp; cells past column Wd of a row are junk
// that nothing reads). hm: (Hp - 1) * Wp + Wd cells.
template <typename scalar_t>
const scalar_t* dense_max_plane(const scalar_t* P, const Plan& p, scalar_t* hm, scalar_t* D) {
  const int64_t Wp = p.Wp, nh = (p.Hp - 1) * Wp + p.Wd, nd = flat_len(p);
  const scalar_t* m = P;
  if (p.kw > 1) {
    for (int64_t q = 0; q < nh; ++q) hm[q] = P[q];
    for (int64_t b = 1; b < p.kw; ++b) {
      const scalar_t* v = P + b * p.dw;
      for (int64_t q = 0; q < nh; ++q) hm[q] = takes_over(v[q], hm[q]) ? v[q] : hm[q];
    }
    m = hm;
  }
  if (p.kh == 1) return m;
  for (int64_t q = 0; q < nd; ++q) D[q] = m[q];
  for (int64_t a = 1; a < p.kh; ++a) {
    const scalar_t* v = m + a * p.dh * Wp;
    for (int64_t q = 0; q < nd; ++q) D[q] = takes_over(v[q], D[q]) ? v[q] : D[q];
  }
  return D;
}

// Dense max row `dh` of a channels-last image (H, W, C), channels [c0, c1), into drow (Wd, C).
// With horizontal_only, `dh` is an input row and only the horizontal max is taken.
template <typename scalar_t>
void dense_max_row_nhwc(const scalar_t* x, int64_t C, int64_t c0, int64_t c1, const Plan& p, int64_t dh,
                        scalar_t* drow, bool horizontal_only = false) {
  const scalar_t ninf = -std::numeric_limits<scalar_t>::infinity();
  for (int64_t d = 0; d < p.Wd; ++d)
    for (int64_t c = c0; c < c1; ++c) drow[d * C + c] = ninf;
  const int64_t rows = horizontal_only ? 1 : p.kh;
  for (int64_t a = 0; a < rows; ++a) {
    const int64_t h = horizontal_only ? dh : p.th[dh * p.kh + a];
    if (h < 0) continue;
    const scalar_t* xrow = x + h * p.W * C;
    for (int64_t d = 0; d < p.Wd; ++d) {
      scalar_t* dst = drow + d * C;
      for (int64_t b = 0; b < p.kw; ++b) {
        const int64_t w = p.tw[d * p.kw + b];
        if (w < 0) continue;
        const scalar_t* v = xrow + w * C;
        for (int64_t c = c0; c < c1; ++c) dst[c] = takes_over(v[c], dst[c]) ? v[c] : dst[c];
      }
    }
  }
}

}  // namespace

at::Tensor max_blur_pool(const at::Tensor& input, at::IntArrayRef kernel, at::IntArrayRef dilation,
                         at::IntArrayRef max_pad_before, at::IntArrayRef max_pad_after, at::TensorList rows,
                         at::IntArrayRef stride, at::IntArrayRef pad_before, at::IntArrayRef pad_after,
                         c10::string_view padding_mode) {
  TORCH_CHECK(input.dim() == 4, "antialias::max_blur_pool: expected a 4-D (N, C, H, W) tensor, got ", input.dim(),
              " dims.");
  const Plan p = make_plan(input.size(2), input.size(3), kernel, dilation, max_pad_before, max_pad_after, rows, stride,
                           pad_before, pad_after, padding_mode);
  const bool cl = is_channels_last(input);
  const at::Tensor x = in_layout(input, cl);
  const int64_t N = x.size(0), C = x.size(1), H = p.H, W = p.W, Hd = p.Hd, Wd = p.Wd;
  const int64_t Ho = p.eh.out_len, Wo = p.ew.out_len;
  at::Tensor out = at::empty({N, C, Ho, Wo},
                             x.options().memory_format(cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "antialias_max_blur", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto wh = cast_weights<acc_t>(p.eh.w);
    const auto ww = cast_weights<acc_t>(p.ew.w);
    const auto tw = cast_weights<acc_t>(p.rw.taps);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const scalar_t ninf = -std::numeric_limits<scalar_t>::infinity();
    if (!cl) {
      at::parallel_for(0, N * C, grain(H * W * p.kh), [&](int64_t begin, int64_t end) {
        std::vector<scalar_t> P(p.unpadded ? 0 : p.Hp * p.Wp), hm(p.Hp * p.Wp), D(Hd * p.Wp);
        std::vector<acc_t> acc(Wd), prow(p.rw.padded), tmp(Wo);
        for (int64_t q = begin; q < end; ++q) {
          const scalar_t* dense = dense_max_plane(padded_plane(xp + q * H * W, p, P.data()), p, hm.data(), D.data());
          blur_plane<scalar_t, scalar_t, acc_t>(dense, Hd, Wd, p.Wp, op + q * Ho * Wo, p.eh, wh, p.rw, tw, acc.data(),
                                                prow.data(), tmp.data());
        }
      });
    } else {
      // Tasks are (image, chunk of output rows). A chunk computes the horizontal max of each
      // input row it needs once, then each dense row once, then its output rows from those.
      const int64_t kb = p.eh.width, chunk = 8, nchunks = (Ho + chunk - 1) / chunk;
      at::parallel_for(0, N * nchunks, 1, [&](int64_t begin, int64_t end) {
        std::vector<scalar_t> hbuf, dbuf;
        std::vector<acc_t> acc((Wd + 1) * C), tmp(C);
        for (int64_t task = begin; task < end; ++task) {
          const int64_t n = task / nchunks, i0 = (task % nchunks) * chunk, i1 = std::min(Ho, i0 + chunk);
          int64_t dlo = Hd, dhi = -1, hlo = H, hhi = -1;
          for (int64_t i = i0; i < i1; ++i)
            for (int64_t t = 0; t < kb; ++t) {
              const int64_t dh = p.eh.idx[i * kb + t];
              if (dh == Hd) continue;
              dlo = std::min(dlo, dh);
              dhi = std::max(dhi, dh);
            }
          for (int64_t dh = dlo; dh <= dhi; ++dh)
            for (int64_t a = 0; a < p.kh; ++a) {
              const int64_t h = p.th[dh * p.kh + a];
              if (h < 0) continue;
              hlo = std::min(hlo, h);
              hhi = std::max(hhi, h);
            }
          const int64_t row = Wd * C;
          hbuf.resize(std::max<int64_t>(0, hhi - hlo + 1) * row);
          dbuf.resize(std::max<int64_t>(0, dhi - dlo + 1) * row);
          const scalar_t* xn = xp + n * H * W * C;
          for (int64_t h = hlo; h <= hhi; ++h)
            dense_max_row_nhwc(xn, C, 0, C, p, h, hbuf.data() + (h - hlo) * row, /*horizontal_only=*/true);
          for (int64_t dh = dlo; dh <= dhi; ++dh) {
            scalar_t* dst = dbuf.data() + (dh - dlo) * row;
            for (int64_t q = 0; q < row; ++q) dst[q] = ninf;
            for (int64_t a = 0; a < p.kh; ++a) {
              const int64_t h = p.th[dh * p.kh + a];
              if (h < 0) continue;
              const scalar_t* v = hbuf.data() + (h - hlo) * row;
              for (int64_t q = 0; q < row; ++q) dst[q] = takes_over(v[q], dst[q]) ? v[q] : dst[q];
            }
          }
          for (int64_t i = i0; i < i1; ++i) {
            std::fill(acc.begin(), acc.end(), acc_t(0));
            for (int64_t t = 0; t < kb; ++t) {
              const int64_t dh = p.eh.idx[i * kb + t];
              if (dh == Hd) continue;
              const acc_t a = wh[i * kb + t];
              const scalar_t* src = dbuf.data() + (dh - dlo) * row;
              for (int64_t q = 0; q < row; ++q) acc[q] += a * static_cast<acc_t>(src[q]);
            }
            horizontal_nhwc<scalar_t, acc_t>(acc.data(), 0, C, C, op + (n * Ho + i) * Wo * C, p.ew, ww, tmp.data());
          }
        }
      });
    }
  });
  return out;
}

at::Tensor max_blur_pool_backward(const at::Tensor& grad_out, const at::Tensor& input, at::IntArrayRef kernel,
                                  at::IntArrayRef dilation, at::IntArrayRef max_pad_before,
                                  at::IntArrayRef max_pad_after, at::TensorList rows, at::IntArrayRef stride,
                                  at::IntArrayRef pad_before, at::IntArrayRef pad_after,
                                  c10::string_view padding_mode) {
  TORCH_CHECK(input.dim() == 4 && grad_out.dim() == 4, "antialias::max_blur_pool_backward: expected 4-D tensors.");
  const Plan p = make_plan(input.size(2), input.size(3), kernel, dilation, max_pad_before, max_pad_after, rows, stride,
                           pad_before, pad_after, padding_mode);
  const bool cl = is_channels_last(input);
  const at::Tensor x = in_layout(input, cl);
  const at::Tensor g = in_layout(grad_out.to(x.scalar_type()), cl);
  const int64_t N = x.size(0), C = x.size(1), H = p.H, W = p.W, Hd = p.Hd, Wd = p.Wd;
  const int64_t Ho = p.eh.out_len, Wo = p.ew.out_len;
  TORCH_CHECK(g.size(0) == N && g.size(1) == C && g.size(2) == Ho && g.size(3) == Wo,
              "antialias::max_blur_pool_backward: gradient of shape ", g.sizes(), " does not match the output size.");
  // Not zero-filled here: each task zeroes its own part right before accumulating into it (one
  // memory pass fewer, and the pages are first touched by the thread that uses them).
  at::Tensor grad_in = at::empty_like(x, x.options().memory_format(cl ? at::MemoryFormat::ChannelsLast
                                                                     : at::MemoryFormat::Contiguous));
  if (grad_in.numel() == 0) return grad_in;
  TORCH_CHECK(H * W * C < (int64_t{1} << 31), "antialias::max_blur_pool_backward: images of more than 2**31 elements are not supported.");
  const Ell th = transpose_table(p.eh), tw = transpose_table(p.ew);  // (Hd over Ho), (Wd over Wo)
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "antialias_max_blur_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    constexpr bool direct = std::is_same_v<scalar_t, acc_t>;  // accumulate straight into grad_in
    const auto wth = cast_weights<acc_t>(th.w);
    const auto wtw = cast_weights<acc_t>(tw.w);
    const auto taps = cast_weights<acc_t>(p.rw.taps);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    scalar_t* ip = grad_in.mutable_data_ptr<scalar_t>();
    const scalar_t ninf = -std::numeric_limits<scalar_t>::infinity();
    const int64_t kh = p.kh, kw = p.kw;
    if (!cl) {
      const int64_t nq = flat_len(p), Wp = p.Wp;
      at::parallel_for(0, N * C, grain(H * W * kh), [&](int64_t begin, int64_t end) {
        std::vector<acc_t> gD(Hd * Wd), rows(Ho * Wd), racc(Wd), prow(p.rw.padded), gi(direct ? 0 : H * W);
        std::vector<scalar_t> P(p.unpadded ? 0 : p.Hp * Wp), best(nq);
        std::vector<int32_t> arg(nq);
        for (int64_t q = begin; q < end; ++q) {
          blur_plane_t<scalar_t, acc_t, acc_t>(gp + q * Ho * Wo, Ho, gD.data(), th, wth, p.rw, taps, rows.data(),
                                               racc.data(), prow.data());
          const scalar_t* Pq = padded_plane(xp + q * H * W, p, P.data());
          acc_t* gq = direct ? reinterpret_cast<acc_t*>(ip + q * H * W) : gi.data();
          std::fill(gq, gq + H * W, acc_t(0));
          // Each window's first maximum in raster order (taps row by row, a tap takes over only if
          // strictly greater or NaN), as F.max_pool2d on the padded plane: tap 0 holds it until
          // then, so a window of -inf keeps it on tap 0 (dropped if that is a padding cell).
          for (int64_t k = 0; k < nq; ++k) {
            best[k] = ninf;
            arg[k] = static_cast<int32_t>(k);
          }
          for (int64_t a = 0; a < kh; ++a) {
            for (int64_t b = 0; b < kw; ++b) {
              const int64_t off = a * p.dh * Wp + b * p.dw;
              const scalar_t* v = Pq + off;
              for (int64_t k = 0; k < nq; ++k) {
                const bool u = takes_over(v[k], best[k]);
                best[k] = u ? v[k] : best[k];
                arg[k] = u ? static_cast<int32_t>(k + off) : arg[k];
              }
            }
          }
          for (int64_t dh = 0; dh < Hd; ++dh) {
            const int32_t* ar = arg.data() + dh * Wp;
            const acc_t* gdr = gD.data() + dh * Wd;
            if (p.unpadded) {
              for (int64_t d = 0; d < Wd; ++d) gq[ar[d]] += gdr[d];
            } else {
              for (int64_t d = 0; d < Wd; ++d) {
                const int32_t src = p.pmap[ar[d]];
                if (src >= 0) gq[src] += gdr[d];  // else the maximum was a padding cell
              }
            }
          }
          if (!direct) {
            scalar_t* dst = ip + q * H * W;
            for (int64_t k = 0; k < H * W; ++k) dst[k] = static_cast<scalar_t>(gi[k]);
          }
        }
      });
    } else {
      // Images are independent; within one, dense rows overlap in the input, so one task owns an
      // (image, channel block) pair and walks its dense rows in order (bitwise equal at any thread count).
      constexpr int64_t block = 64;
      const int64_t nblk = (C + block - 1) / block;
      at::parallel_for(0, N * nblk, 1, [&](int64_t begin, int64_t end) {
        std::vector<acc_t> tmpv((Wo + 1) * C), gDrow(Wd * C), tmp(C), gi(direct ? 0 : H * W * C);
        std::vector<scalar_t> best(C);
        std::vector<int32_t> arg(C);
        for (int64_t task = begin; task < end; ++task) {
          const int64_t n = task / nblk, c0 = (task % nblk) * block, c1 = std::min(C, c0 + block);
          const scalar_t* xn = xp + n * H * W * C;
          const scalar_t* gn = gp + n * Ho * Wo * C;
          acc_t* gq = direct ? reinterpret_cast<acc_t*>(ip + n * H * W * C) : gi.data();
          for (int64_t k = 0; k < H * W; ++k)
            for (int64_t c = c0; c < c1; ++c) gq[k * C + c] = acc_t(0);
          for (int64_t dh = 0; dh < Hd; ++dh) {
            for (int64_t k = 0; k <= Wo; ++k)
              for (int64_t c = c0; c < c1; ++c) tmpv[k * C + c] = acc_t(0);
            for (int64_t t = 0; t < th.width; ++t) {
              const int64_t i = th.idx[dh * th.width + t];
              if (i == Ho) continue;
              const acc_t a = wth[dh * th.width + t];
              const scalar_t* grow = gn + i * Wo * C;
              for (int64_t k = 0; k < Wo; ++k)
                for (int64_t c = c0; c < c1; ++c) tmpv[k * C + c] += a * static_cast<acc_t>(grow[k * C + c]);
            }
            horizontal_nhwc<acc_t, acc_t>(tmpv.data(), c0, c1, C, gDrow.data(), tw, wtw, tmp.data());
            for (int64_t d = 0; d < Wd; ++d) {
              for (int64_t c = c0; c < c1; ++c) {
                best[c] = ninf;
                arg[c] = 0;  // tap 0 holds the gradient until a later tap takes over
              }
              for (int64_t a = 0; a < kh; ++a) {
                const int64_t h = p.th[dh * kh + a];
                if (h < 0) continue;
                for (int64_t b = 0; b < kw; ++b) {
                  const int64_t w = p.tw[d * kw + b];
                  if (w < 0) continue;
                  const scalar_t* v = xn + (h * W + w) * C;
                  const int32_t tap = static_cast<int32_t>(a * kw + b);
                  for (int64_t c = c0; c < c1; ++c) {
                    const bool u = takes_over(v[c], best[c]);
                    best[c] = u ? v[c] : best[c];
                    arg[c] = u ? tap : arg[c];
                  }
                }
              }
              // Route by tap: one masked, vectorised add per tap instead of a per-channel scatter
              // (a padding tap is skipped, which drops a gradient left on it).
              const acc_t* gd = gDrow.data() + d * C;
              for (int64_t a = 0; a < kh; ++a) {
                const int64_t h = p.th[dh * kh + a];
                if (h < 0) continue;
                for (int64_t b = 0; b < kw; ++b) {
                  const int64_t w = p.tw[d * kw + b];
                  if (w < 0) continue;
                  const int32_t tap = static_cast<int32_t>(a * kw + b);
                  acc_t* dst = gq + (h * W + w) * C;
                  for (int64_t c = c0; c < c1; ++c) dst[c] += arg[c] == tap ? gd[c] : acc_t(0);
                }
              }
            }
          }
          if (!direct) {
            scalar_t* dst = ip + n * H * W * C;
            for (int64_t k = 0; k < H * W; ++k)
              for (int64_t c = c0; c < c1; ++c) dst[k * C + c] = static_cast<scalar_t>(gi[k * C + c]);
          }
        }
      });
    }
  });
  return grad_in;
}

}  // namespace antialias
