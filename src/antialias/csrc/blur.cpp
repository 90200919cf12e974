// antialias::blur_pool and its backward on CPU: a separable gather, vertical pass then horizontal,
// over NCHW planes or channels-last rows, with padding folded into the index tables.
#include "common.h"

#include <algorithm>

namespace antialias {

Pad parse_mode(const std::string& mode) {
  if (mode == "zeros") return Pad::Zeros;
  if (mode == "reflect") return Pad::Reflect;
  if (mode == "replicate") return Pad::Replicate;
  if (mode == "circular") return Pad::Circular;
  TORCH_CHECK_VALUE(false, "antialias: `padding_mode` must be one of ('reflect', 'replicate', 'zeros', 'circular'), got '",
                    mode, "'.");
}

Pad axis_mode(Pad mode, int64_t length, int64_t before, int64_t after) {
  if (mode == Pad::Reflect && std::max(before, after) >= length) return Pad::Replicate;
  return mode;
}

std::vector<double> row_values(const at::Tensor& row) {
  at::Tensor r = row.detach().to(at::kCPU, at::kDouble).contiguous().view(-1);
  const double* p = r.data_ptr<double>();
  return std::vector<double>(p, p + r.numel());
}

Ell blur_table(const std::vector<double>& row, int64_t length, int64_t before, int64_t after, Pad mode, int64_t stride) {
  const int64_t k = static_cast<int64_t>(row.size());
  TORCH_CHECK_VALUE(k >= 1 && stride >= 1 && length >= 1, "antialias: empty filter, stride < 1 or empty axis.");
  Ell e;
  e.in_len = length;
  e.width = k;
  e.out_len = (length + before + after - k) / stride + 1;
  TORCH_CHECK_VALUE(e.out_len >= 1, "antialias: the padded axis of ", length, " cells is shorter than the filter (", k,
                    " taps).");
  e.idx.resize(e.out_len * k);
  e.w.resize(e.out_len * k);
  for (int64_t o = 0; o < e.out_len; ++o) {
    for (int64_t t = 0; t < k; ++t) {
      const int64_t src = source_index(o * stride + t - before, length, mode);
      e.idx[o * k + t] = src < 0 ? length : src;
      e.w[o * k + t] = src < 0 ? 0.0 : row[t];
    }
  }
  return e;
}

Row row_plan(const std::vector<double>& taps, int64_t length, int64_t before, int64_t after, Pad mode, int64_t stride) {
  Row r;
  r.k = static_cast<int64_t>(taps.size());
  r.in_len = length;
  r.stride = stride;
  r.before = before;
  r.padded = length + before + after;
  r.out_len = (r.padded - r.k) / stride + 1;
  TORCH_CHECK_VALUE(r.k >= 1 && stride >= 1 && r.out_len >= 1, "antialias: the padded axis of ", length,
                    " cells is shorter than the filter (", r.k, " taps).");
  r.taps = taps;
  r.src.resize(r.padded);
  for (int64_t q = 0; q < r.padded; ++q) r.src[q] = source_index(q - before, length, mode);
  return r;
}

Ell transpose_table(const Ell& table) {
  Ell t;
  t.out_len = table.in_len;
  t.in_len = table.out_len;
  std::vector<int64_t> count(table.in_len + 1, 0);
  for (int64_t o = 0; o < table.out_len; ++o)
    for (int64_t j = 0; j < table.width; ++j) count[table.idx[o * table.width + j]]++;
  t.width = 1;
  for (int64_t i = 0; i < table.in_len; ++i) t.width = std::max(t.width, count[i]);
  t.idx.assign(t.out_len * t.width, t.in_len);
  t.w.assign(t.out_len * t.width, 0.0);
  std::vector<int64_t> fill(table.in_len, 0);
  for (int64_t o = 0; o < table.out_len; ++o) {
    for (int64_t j = 0; j < table.width; ++j) {
      const int64_t src = table.idx[o * table.width + j];
      if (src == table.in_len) continue;  // the dummy zero cell has no gradient
      const int64_t slot = src * t.width + fill[src]++;
      t.idx[slot] = o;
      t.w[slot] = table.w[o * table.width + j];
    }
  }
  return t;
}

std::vector<int64_t> max_taps(int64_t length, int64_t kernel, int64_t dilation, int64_t before, int64_t after,
                              bool circular, int64_t* dense_len) {
  const int64_t span = dilation * (kernel - 1);
  const int64_t n = length + before + after - span;
  TORCH_CHECK_VALUE(n >= 1, "antialias: an axis of ", length, " cells is smaller than the pooling window.");
  *dense_len = n;
  std::vector<int64_t> taps(n * kernel);
  for (int64_t d = 0; d < n; ++d) {
    for (int64_t a = 0; a < kernel; ++a) {
      const int64_t p = d + a * dilation - before;
      taps[d * kernel + a] = circular ? source_index(p, length, Pad::Circular) : (p >= 0 && p < length ? p : -1);
    }
  }
  return taps;
}

namespace {

int64_t grain(int64_t work_per_item) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, work_per_item));
}

// The blur (forward: `transpose` false) or its vector-Jacobian product over every (N, C) plane of
// `input`, in the input's own memory layout. eh/ew are the forward tables, rw the forward row plan.
at::Tensor apply_separable(const at::Tensor& input, const Ell& eh, const Ell& ew, const Row& rw, bool transpose) {
  TORCH_CHECK(input.dim() == 4, "antialias: expected a 4-D (N, C, H, W) tensor, got ", input.dim(), " dims.");
  const bool cl = is_channels_last(input);
  const at::Tensor x = in_layout(input, cl);
  const int64_t N = x.size(0), C = x.size(1), Hi = x.size(2), Wi = x.size(3);
  const Ell th = transpose ? transpose_table(eh) : Ell();
  const Ell& vh = transpose ? th : eh;  // the vertical gather
  TORCH_CHECK(Hi == vh.in_len && Wi == (transpose ? ew.out_len : ew.in_len), "antialias: internal shape mismatch.");
  const int64_t Ho = vh.out_len, Wo = transpose ? ew.in_len : ew.out_len;
  at::Tensor out = at::empty({N, C, Ho, Wo},
                             x.options().memory_format(cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "antialias_blur", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto wv = cast_weights<acc_t>(vh.w);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    if (!cl) {
      const auto tw = cast_weights<acc_t>(rw.taps);
      at::parallel_for(0, N * C, grain(Ho * Wo * 4), [&](int64_t begin, int64_t end) {
        std::vector<acc_t> acc(std::max(Wi, Wo)), prow(rw.padded), tmp(rw.out_len);
        std::vector<acc_t> rows(transpose ? Hi * Wo : 0);
        for (int64_t p = begin; p < end; ++p) {
          if (transpose)
            blur_plane_t<scalar_t, scalar_t, acc_t>(xp + p * Hi * Wi, Hi, op + p * Ho * Wo, vh, wv, rw, tw,
                                                    rows.data(), acc.data(), prow.data());
          else
            blur_plane<scalar_t, scalar_t, acc_t>(xp + p * Hi * Wi, Hi, Wi, Wi, op + p * Ho * Wo, vh, wv, rw, tw,
                                                  acc.data(), prow.data(), tmp.data());
        }
      });
    } else {
      const Ell tw_ell = transpose ? transpose_table(ew) : Ell();
      const Ell& hw = transpose ? tw_ell : ew;
      const auto ww = cast_weights<acc_t>(hw.w);
      at::parallel_for(0, N * Ho, grain(Wi * C * vh.width), [&](int64_t begin, int64_t end) {
        std::vector<acc_t> acc((Wi + 1) * C), tmp(C);
        for (int64_t r = begin; r < end; ++r) {
          const int64_t n = r / Ho, i = r % Ho;
          blur_row_nhwc<scalar_t, scalar_t, acc_t>(xp + n * Hi * Wi * C, Hi, Wi, C, i, op + r * Wo * C, vh, wv, hw, ww,
                                                   acc.data(), tmp.data());
        }
      });
    }
  });
  return out;
}

void check_args(at::TensorList rows, at::IntArrayRef stride, at::IntArrayRef pad_before, at::IntArrayRef pad_after) {
  TORCH_CHECK_VALUE(rows.size() == 2 && stride.size() == 2 && pad_before.size() == 2 && pad_after.size() == 2,
                    "antialias: expected 2 filter rows, strides and paddings (one per spatial axis).");
}

}  // namespace

at::Tensor blur_pool(const at::Tensor& x, at::TensorList rows, at::IntArrayRef stride, at::IntArrayRef pad_before,
                     at::IntArrayRef pad_after, c10::string_view padding_mode) {
  check_args(rows, stride, pad_before, pad_after);
  TORCH_CHECK(x.dim() == 4, "antialias::blur_pool: expected a 4-D (N, C, H, W) tensor, got ", x.dim(), " dims.");
  const Pad mode = parse_mode(std::string(padding_mode));
  const int64_t H = x.size(2), W = x.size(3);
  const Ell eh = blur_table(row_values(rows[0]), H, pad_before[0], pad_after[0],
                            axis_mode(mode, H, pad_before[0], pad_after[0]), stride[0]);
  const Ell ew = blur_table(row_values(rows[1]), W, pad_before[1], pad_after[1],
                            axis_mode(mode, W, pad_before[1], pad_after[1]), stride[1]);
  const Row rw = row_plan(row_values(rows[1]), W, pad_before[1], pad_after[1],
                          axis_mode(mode, W, pad_before[1], pad_after[1]), stride[1]);
  return apply_separable(x, eh, ew, rw, false);
}

at::Tensor blur_pool_backward(const at::Tensor& grad, at::TensorList rows, at::IntArrayRef input_size,
                              at::IntArrayRef stride, at::IntArrayRef pad_before, at::IntArrayRef pad_after,
                              c10::string_view padding_mode) {
  check_args(rows, stride, pad_before, pad_after);
  TORCH_CHECK(grad.dim() == 4 && input_size.size() == 2, "antialias::blur_pool_backward: bad arguments.");
  const Pad mode = parse_mode(std::string(padding_mode));
  const int64_t H = input_size[0], W = input_size[1];
  const Ell eh = blur_table(row_values(rows[0]), H, pad_before[0], pad_after[0],
                            axis_mode(mode, H, pad_before[0], pad_after[0]), stride[0]);
  const Ell ew = blur_table(row_values(rows[1]), W, pad_before[1], pad_after[1],
                            axis_mode(mode, W, pad_before[1], pad_after[1]), stride[1]);
  TORCH_CHECK(grad.size(2) == eh.out_len && grad.size(3) == ew.out_len,
              "antialias::blur_pool_backward: gradient of shape ", grad.sizes(), " does not match the output size.");
  const Row rw = row_plan(row_values(rows[1]), W, pad_before[1], pad_after[1],
                          axis_mode(mode, W, pad_before[1], pad_after[1]), stride[1]);
  return apply_separable(grad, eh, ew, rw, true);
}

}  // namespace antialias
