// The antialias operator library: schemas and CPU kernels. Fake (meta) kernels and autograd are
// registered from Python (antialias/_ops.py) with torch.library.
#include <torch/library.h>

#include "common.h"

TORCH_LIBRARY(antialias, m) {
  m.def("blur_pool(Tensor x, Tensor[] rows, int[] stride, int[] pad_before, int[] pad_after, str padding_mode) -> Tensor");
  m.def(
      "blur_pool_backward(Tensor grad, Tensor[] rows, int[] input_size, int[] stride, int[] pad_before, "
      "int[] pad_after, str padding_mode) -> Tensor");
  m.def(
      "max_blur_pool(Tensor x, int[] kernel, int[] dilation, int[] max_pad_before, int[] max_pad_after, "
      "Tensor[] rows, int[] stride, int[] pad_before, int[] pad_after, str padding_mode) -> Tensor");
  m.def(
      "max_blur_pool_backward(Tensor grad, Tensor x, int[] kernel, int[] dilation, int[] max_pad_before, "
      "int[] max_pad_after, Tensor[] rows, int[] stride, int[] pad_before, int[] pad_after, str padding_mode) -> Tensor");
}

TORCH_LIBRARY_IMPL(antialias, CPU, m) {
  m.impl("blur_pool", &antialias::blur_pool);
  m.impl("blur_pool_backward", &antialias::blur_pool_backward);
  m.impl("max_blur_pool", &antialias::max_blur_pool);
  m.impl("max_blur_pool_backward", &antialias::max_blur_pool_backward);
}
