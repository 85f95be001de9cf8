// Backward of ADOP's one-pixel point rasterizer (CuPy RawModule; see adop/raster/_cuda.py and docs/method.md §4).
// Exact descriptor gradients (G / weight for every blended point) and the screen-space "ghost" sums that
// adop/raster/function.py pushes through the projection Jacobians; the background gradient is a reduction over
// empty pixels.
#include "common.cuh"

extern "C" __global__ void rasterize_points_bwd_points(
    const float* __restrict__ proj, const float* __restrict__ descriptors, const unsigned char* __restrict__ drop,
    const float* __restrict__ weight, const float* __restrict__ depth, const float* f0, const float* f1,
    const float* f2, const float* f3, const float* f4, const float* g0, const float* g1, const float* g2,
    const float* g3, const float* g4, float* __restrict__ grad_desc, float* __restrict__ screen,
    float* __restrict__ count, i64 n_points, i64 n_views, int channels, int width, int height, int layers,
    float accept, int ghost) {
  const i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n_points * n_views) return;
  const float4 pj = reinterpret_cast<const float4*>(proj)[i];
  const int nl = (int)pj.w;
  if (nl == 0) return;
  const i64 b = i / n_points, n = i - b * n_points;
  const bool dropped = drop != nullptr && drop[i] != 0;
  const AdopPyramid pyr(width, height, layers, n_views);
  const float* feats[ADOP_MAX_LAYERS] = {f0, f1, f2, f3, f4};
  const float* grads[ADOP_MAX_LAYERS] = {g0, g1, g2, g3, g4};
  const float* own = descriptors + n * channels;
  if (grad_desc != nullptr && !dropped) {
    for (int l = 0; l < nl; ++l) {
      int x, y;
      const i64 idx = pyr.pixel(l, pj.x, pj.y, &x, &y);
      if (idx < 0) continue;
      const i64 at = pyr.offset[l] + b * pyr.hw(l) + idx;
      if (!(pj.z <= depth[at] * accept)) continue;
      const float w = weight[at];
      const float* g = grads[l] + b * channels * pyr.hw(l) + idx;
      for (int c = 0; c < channels; ++c) atomicAdd(grad_desc + n * channels + c, g[c * pyr.hw(l)] / w);
    }
  }
  if (screen != nullptr && (ghost ? dropped : !dropped)) {
    float gx = 0.0f, gy = 0.0f, cnt = 0.0f;
    for (int l = 0; l < nl; ++l) {
      int x, y;
      const i64 idx = pyr.pixel(l, pj.x, pj.y, &x, &y);
      if (idx < 0) continue;
      const i64 hw = pyr.hw(l);
      if (!(pj.z <= depth[pyr.offset[l] + b * hw + idx] * accept)) break;  // occluded: stop (ADOP's break)
      if (x < ADOP_BORDER || x >= pyr.w[l] - ADOP_BORDER || y < ADOP_BORDER || y >= pyr.h[l] - ADOP_BORDER) continue;
      const float* img = feats[l] + b * channels * hw + idx;
      const float* g = grads[l] + b * channels * hw + idx;
      const i64 offs[4] = {1, -1, (i64)pyr.w[l], -(i64)pyr.w[l]};
      float d[4];
      for (int k = 0; k < 4; ++k) {
        float s = 0.0f;
        for (int c = 0; c < channels; ++c) s += (own[c] - img[c * hw + offs[k]]) * g[c * hw + offs[k]];
        d[k] = s;
      }
      const float scale = 0.5f / (float)channels / (float)(1 << l);
      gx += (d[0] - d[1]) * scale;
      gy += (d[2] - d[3]) * scale;
      cnt += 1.0f;
    }
    screen[2 * i] = gx;
    screen[2 * i + 1] = gy;
    count[i] = cnt;
  }
}

// Sum of dL/dI over empty pixels (weight == 0) of every layer and view; warp-reduced, one atomic per warp/channel.
extern "C" __global__ void rasterize_points_bwd_background(
    const float* __restrict__ weight, const float* g0, const float* g1, const float* g2, const float* g3,
    const float* g4, float* __restrict__ grad_bg, i64 n_views, int channels, int width, int height, int layers) {
  const i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  const AdopPyramid pyr(width, height, layers, n_views);
  const bool inside = i < pyr.offset[layers];
  int l = 0;
  if (inside) {
    while (l + 1 < layers && i >= pyr.offset[l + 1]) ++l;
  }
  const float* grads[ADOP_MAX_LAYERS] = {g0, g1, g2, g3, g4};
  const i64 hw = pyr.hw(l);
  const i64 local = i - pyr.offset[l];
  const i64 b = inside ? local / hw : 0, p = inside ? local - b * hw : 0;
  const bool empty = inside && weight[i] == 0.0f;
  for (int c = 0; c < channels; ++c) {
    float v = empty ? grads[l][(b * channels + c) * hw + p] : 0.0f;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    if ((threadIdx.x & 31) == 0 && v != 0.0f) atomicAdd(grad_bg + c, v);
  }
}
