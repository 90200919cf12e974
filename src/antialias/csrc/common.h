// Shared helpers of the antialias CPU kernels: padding arithmetic, per-axis gather tables, layouts.
//
// Every op here is separable: along each spatial axis an output cell is a short weighted sum (the
// blur) or a max (the dense max) of input cells. Padding is folded into index tables built once per
// call (O(length) work), so no padded copy of the input is ever made.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace antialias {

enum class Pad { Zeros, Reflect, Replicate, Circular };

Pad parse_mode(const std::string& mode);

// Mode actually used on an axis: reflect on an axis too short for it becomes replicate (the Python
// side warns about it), exactly as antialias.functional does.
Pad axis_mode(Pad mode, int64_t length, int64_t before, int64_t after);

// Source index of padded position p (p may be negative or >= length); -1 for a zero cell.
inline int64_t source_index(int64_t p, int64_t length, Pad mode) {
  if (p >= 0 && p < length) return p;
  switch (mode) {
    case Pad::Zeros:
      return -1;
    case Pad::Replicate:
      return p < 0 ? 0 : length - 1;
    case Pad::Circular: {
      int64_t r = p % length;
      return r < 0 ? r + length : r;
    }
    case Pad::Reflect: {
      int64_t q = p < 0 ? -p : p;
      return q > length - 1 ? 2 * (length - 1) - q : q;
    }
  }
  return -1;
}

// A sparse (out_len x in_len) matrix with `width` entries per row ("ELL" format). Missing entries
// point at the dummy cell `in_len` with weight 0; callers keep that cell at 0, so 0 * inf never
// happens there.
struct Ell {
  int64_t out_len = 0, in_len = 0, width = 0;
  std::vector<int64_t> idx;
  std::vector<double> w;
};

// Pad by (before, after) in `mode`, correlate with `row`, keep every `stride`-th output.
Ell blur_table(const std::vector<double>& row, int64_t length, int64_t before, int64_t after, Pad mode, int64_t stride);
// The transpose of `table` (the vector-Jacobian product of the blur), as a gather.
Ell transpose_table(const Ell& table);

// Source index of every tap of every dense-max window along one axis: (dense_len * kernel) entries,
// -1 for a -inf padded cell. Circular wraps instead of padding.
std::vector<int64_t> max_taps(int64_t length, int64_t kernel, int64_t dilation, int64_t before, int64_t after, bool circular, int64_t* dense_len);

std::vector<double> row_values(const at::Tensor& row);

// The memory layouts the kernels loop over natively. Anything else is made contiguous (NCHW).
inline bool is_channels_last(const at::Tensor& x) {
  return !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
}
inline at::Tensor in_layout(const at::Tensor& t, bool channels_last) {
  return t.contiguous(channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
}

template <typename acc_t>
std::vector<acc_t> cast_weights(const std::vector<double>& w) {
  return std::vector<acc_t>(w.begin(), w.end());
}

// NaN-propagating max step, F.max_pool2d's rule: a NaN always replaces the running value.
template <typename T>
inline bool takes_over(T v, T best) {
  return (v > best) | (v != v);  // no short-circuit: keeps the loops branch-free (vectorised)
}

// One axis of an NCHW plane's rows as a strided correlation over a padded copy of the row (the
// row is short and in cache; the padded copy makes every tap one contiguous, vectorisable pass).
struct Row {
  int64_t in_len = 0, out_len = 0, k = 0, stride = 1, before = 0, padded = 0;
  std::vector<int64_t> src;  // (padded): source of each padded cell, -1 for a zero cell
  std::vector<double> taps;
};
Row row_plan(const std::vector<double>& taps, int64_t length, int64_t before, int64_t after, Pad mode, int64_t stride);

// tmp[j] += w * p[j * S] for j < n, with S known at compile time where it matters (1, 2).
template <typename acc_t, int S>
inline void strided_mac(acc_t* tmp, const acc_t* p, acc_t w, int64_t n) {
  for (int64_t j = 0; j < n; ++j) tmp[j] += w * p[j * S];
}
template <typename acc_t>
inline void strided_mac_any(acc_t* tmp, const acc_t* p, acc_t w, int64_t n, int64_t stride) {
  if (stride == 1) return strided_mac<acc_t, 1>(tmp, p, w, n);
  if (stride == 2) return strided_mac<acc_t, 2>(tmp, p, w, n);
  for (int64_t j = 0; j < n; ++j) tmp[j] += w * p[j * stride];
}
// p[j * S] += w * g[j] for j < n (the transpose of strided_mac).
template <typename in_t, typename acc_t, int S>
inline void strided_scatter(acc_t* p, const in_t* g, acc_t w, int64_t n) {
  for (int64_t j = 0; j < n; ++j) p[j * S] += w * static_cast<acc_t>(g[j]);
}
template <typename in_t, typename acc_t>
inline void strided_scatter_any(acc_t* p, const in_t* g, acc_t w, int64_t n, int64_t stride) {
  if (stride == 1) return strided_scatter<in_t, acc_t, 1>(p, g, w, n);
  if (stride == 2) return strided_scatter<in_t, acc_t, 2>(p, g, w, n);
  for (int64_t j = 0; j < n; ++j) p[j * stride] += w * static_cast<acc_t>(g[j]);
}

// Horizontal blur of one row: out[j] = sum_t taps[t] * padded(row)[j * stride + t].
// prow: r.padded cells, tmp: r.out_len cells.
template <typename acc_t, typename out_t>
inline void hblur(const acc_t* row, out_t* out, const Row& r, const acc_t* taps, acc_t* prow, acc_t* tmp) {
  const int64_t lo = std::min(r.before, r.padded), hi = std::min(r.before + r.in_len, r.padded);
  for (int64_t q = lo; q < hi; ++q) prow[q] = row[q - r.before];  // interior: a contiguous copy
  for (int64_t q = 0; q < r.padded; ++q) {
    if (q == lo) q = hi;
    if (q >= r.padded) break;
    const int64_t s = r.src[q];
    prow[q] = s < 0 ? acc_t(0) : row[s];
  }
  for (int64_t j = 0; j < r.out_len; ++j) tmp[j] = acc_t(0);
  for (int64_t t = 0; t < r.k; ++t) strided_mac_any(tmp, prow + t, taps[t], r.out_len, r.stride);
  for (int64_t j = 0; j < r.out_len; ++j) out[j] = static_cast<out_t>(tmp[j]);
}

// Its transpose: out (r.in_len cells) = the vector-Jacobian product of hblur for the row gradient g.
template <typename in_t, typename acc_t>
inline void hblur_t(const in_t* g, acc_t* out, const Row& r, const acc_t* taps, acc_t* prow) {
  for (int64_t q = 0; q < r.padded; ++q) prow[q] = acc_t(0);
  for (int64_t t = 0; t < r.k; ++t) strided_scatter_any(prow + t, g, taps[t], r.out_len, r.stride);
  for (int64_t w = 0; w < r.in_len; ++w) out[w] = prow[w + r.before];
  for (int64_t q = 0; q < r.padded; ++q) {  // fold the padding cells back onto their sources
    if (q >= r.before && q < r.before + r.in_len) {
      q = r.before + r.in_len - 1;
      continue;
    }
    const int64_t s = r.src[q];
    if (s >= 0) out[s] += prow[q];
  }
}

// Separable blur of one (Hi x Wi) NCHW plane with row pitch `pitch`: rows gathered by eh (vectorised over the row), then
// hblur. acc: Wi, prow: rw.padded, tmp: rw.out_len.
template <typename in_t, typename out_t, typename acc_t>
void blur_plane(const in_t* in, int64_t Hi, int64_t Wi, int64_t pitch, out_t* out, const Ell& eh,
                const std::vector<acc_t>& wh, const Row& rw, const std::vector<acc_t>& tw, acc_t* acc, acc_t* prow,
                acc_t* tmp) {
  const int64_t kh = eh.width, Wo = rw.out_len;
  for (int64_t i = 0; i < eh.out_len; ++i) {
    for (int64_t q = 0; q < Wi; ++q) acc[q] = acc_t(0);
    for (int64_t t = 0; t < kh; ++t) {
      const int64_t h = eh.idx[i * kh + t];
      if (h == Hi) continue;
      const acc_t a = wh[i * kh + t];
      const in_t* src = in + h * pitch;
      for (int64_t q = 0; q < Wi; ++q) acc[q] += a * static_cast<acc_t>(src[q]);
    }
    hblur(acc, out + i * Wo, rw, tw.data(), prow, tmp);
  }
}

// Its transpose, for the gradient g (Ho x Wo) of a plane: rows first (hblur_t into `rows`, Ho x Wi),
// then the transposed vertical table th (Hi rows over Ho). racc: Wi, prow: rw.padded.
template <typename in_t, typename out_t, typename acc_t>
void blur_plane_t(const in_t* g, int64_t Ho, out_t* out, const Ell& th, const std::vector<acc_t>& wth, const Row& rw,
                  const std::vector<acc_t>& tw, acc_t* rows, acc_t* racc, acc_t* prow) {
  const int64_t Wi = rw.in_len, Wo = rw.out_len, kt = th.width;
  for (int64_t i = 0; i < Ho; ++i) hblur_t(g + i * Wo, rows + i * Wi, rw, tw.data(), prow);
  for (int64_t h = 0; h < th.out_len; ++h) {
    for (int64_t q = 0; q < Wi; ++q) racc[q] = acc_t(0);
    for (int64_t t = 0; t < kt; ++t) {
      const int64_t i = th.idx[h * kt + t];
      if (i == Ho) continue;
      const acc_t a = wth[h * kt + t];
      const acc_t* src = rows + i * Wi;
      for (int64_t q = 0; q < Wi; ++q) racc[q] += a * src[q];
    }
    out_t* o = out + h * Wi;
    for (int64_t q = 0; q < Wi; ++q) o[q] = static_cast<out_t>(racc[q]);
  }
}

// Horizontal pass of a channels-last row: dst[j, c] = sum_t w[j, t] * acc[idx[j, t], c] for c in
// [c0, c1) (row pitch `C`); `acc` has a zero dummy cell at index ew.in_len.
template <typename out_t, typename acc_t>
void horizontal_nhwc(const acc_t* acc, int64_t c0, int64_t c1, int64_t C, out_t* dst, const Ell& ew,
                     const std::vector<acc_t>& ww, acc_t* tmp) {
  const int64_t kw = ew.width, Wo = ew.out_len;
  for (int64_t j = 0; j < Wo; ++j) {
    for (int64_t c = c0; c < c1; ++c) tmp[c] = acc_t(0);
    for (int64_t t = 0; t < kw; ++t) {
      if (ew.idx[j * kw + t] == ew.in_len) continue;  // padding entry of a short row (zero weight)
      const acc_t b = ww[j * kw + t];
      const acc_t* col = acc + ew.idx[j * kw + t] * C;
      for (int64_t c = c0; c < c1; ++c) tmp[c] += b * col[c];
    }
    out_t* o = dst + j * C;
    for (int64_t c = c0; c < c1; ++c) o[c] = static_cast<out_t>(tmp[c]);
  }
}

// The same blur on an (Hi, Wi, C) channels-last image, output row `i` only, into `dst` (Wo, C).
// `acc` holds (Wi + 1) * C accumulators, `tmp` C.
template <typename in_t, typename out_t, typename acc_t>
void blur_row_nhwc(const in_t* in, int64_t Hi, int64_t Wi, int64_t C, int64_t i, out_t* dst, const Ell& eh,
                   const std::vector<acc_t>& wh, const Ell& ew, const std::vector<acc_t>& ww, acc_t* acc, acc_t* tmp) {
  const int64_t kh = eh.width;
  const int64_t n = (Wi + 1) * C;
  for (int64_t q = 0; q < n; ++q) acc[q] = acc_t(0);
  for (int64_t t = 0; t < kh; ++t) {
    const int64_t h = eh.idx[i * kh + t];
    if (h == Hi) continue;
    const acc_t a = wh[i * kh + t];
    const in_t* src = in + h * Wi * C;
    for (int64_t q = 0; q < Wi * C; ++q) acc[q] += a * static_cast<acc_t>(src[q]);
  }
  horizontal_nhwc<out_t, acc_t>(acc, 0, C, C, dst, ew, ww, tmp);
}

// Op entry points (registered in register.cpp).
at::Tensor blur_pool(const at::Tensor& x, at::TensorList rows, at::IntArrayRef stride, at::IntArrayRef pad_before,
                     at::IntArrayRef pad_after, c10::string_view padding_mode);
at::Tensor blur_pool_backward(const at::Tensor& grad, at::TensorList rows, at::IntArrayRef input_size,
                              at::IntArrayRef stride, at::IntArrayRef pad_before, at::IntArrayRef pad_after,
                              c10::string_view padding_mode);
at::Tensor max_blur_pool(const at::Tensor& x, at::IntArrayRef kernel, at::IntArrayRef dilation,
                         at::IntArrayRef max_pad_before, at::IntArrayRef max_pad_after, at::TensorList rows,
                         at::IntArrayRef stride, at::IntArrayRef pad_before, at::IntArrayRef pad_after,
                         c10::string_view padding_mode);
at::Tensor max_blur_pool_backward(const at::Tensor& grad, const at::Tensor& x, at::IntArrayRef kernel,
                                  at::IntArrayRef dilation, at::IntArrayRef max_pad_before,
                                  at::IntArrayRef max_pad_after, at::TensorList rows, at::IntArrayRef stride,
                                  at::IntArrayRef pad_before, at::IntArrayRef pad_after,
                                  c10::string_view padding_mode);

}  // namespace antialias
