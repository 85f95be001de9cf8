// Forward passes of ADOP's one-pixel point rasterizer (CuPy RawModule; see adop/raster/_cuda.py).
// Pass 1 projects every (view, point) pair and does the depth pre-pass, pass 2 the fuzzy accumulate, pass 3 the
// resolve (mean or background) into one planar [B, C, H_l, W_l] tensor per layer.
#include "common.cuh"

extern "C" __global__ void rasterize_points_fwd_project(
    const float* __restrict__ positions, const float* __restrict__ normals, const float* __restrict__ radius,
    const float* __restrict__ views, float* __restrict__ proj, float* __restrict__ depth, i64 n_points, i64 n_views,
    int width, int height, int layers, float znear, float threshold) {
  const i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n_points * n_views) return;
  const i64 b = i / n_points, n = i - b * n_points;
  float u, v, z;
  const int nl = adop_project(positions + 3 * n, normals ? normals + 3 * n : nullptr, radius ? radius + n : nullptr,
                              views + b * ADOP_VIEW_PARAMS, width, height, layers, threshold, znear, &u, &v, &z);
  float4 out = make_float4(u, v, z, (float)nl);
  reinterpret_cast<float4*>(proj)[i] = out;
  if (nl == 0) return;
  const AdopPyramid pyr(width, height, layers, n_views);
  for (int l = 0; l < nl; ++l) {
    int x, y;
    const i64 idx = pyr.pixel(l, u, v, &x, &y);
    if (idx < 0) continue;
    adop_atomic_min_depth(depth + pyr.offset[l] + b * pyr.hw(l) + idx, z);
  }
}

extern "C" __global__ void rasterize_points_fwd_accumulate(
    const float* __restrict__ proj, const float* __restrict__ descriptors, const unsigned char* __restrict__ drop,
    const float* __restrict__ depth, float* __restrict__ weight, float* __restrict__ accum, i64 n_points,
    i64 n_views, int channels, int width, int height, int layers, float accept) {
  const i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n_points * n_views) return;
  if (drop != nullptr && drop[i]) return;
  const float4 pj = reinterpret_cast<const float4*>(proj)[i];
  const int nl = (int)pj.w;
  if (nl == 0) return;
  const i64 b = i / n_points, n = i - b * n_points;
  const AdopPyramid pyr(width, height, layers, n_views);
  const float* d = descriptors + n * channels;
  for (int l = 0; l < nl; ++l) {
    int x, y;
    const i64 idx = pyr.pixel(l, pj.x, pj.y, &x, &y);
    if (idx < 0) continue;
    const i64 at = pyr.offset[l] + b * pyr.hw(l) + idx;
    if (!(pj.z <= depth[at] * accept)) continue;
    atomicAdd(weight + at, 1.0f);
    float* a = accum + at * channels;
    for (int c = 0; c < channels; ++c) atomicAdd(a + c, d[c]);
  }
}

extern "C" __global__ void rasterize_points_fwd_resolve(
    const float* __restrict__ weight, const float* __restrict__ accum, float* __restrict__ depth,
    const float* __restrict__ background,
    float* out0, float* out1, float* out2, float* out3, float* out4, i64 n_views, int channels, int width,
    int height, int layers) {
  const i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  const AdopPyramid pyr(width, height, layers, n_views);
  if (i >= pyr.offset[layers]) return;
  int l = 0;
  while (l + 1 < layers && i >= pyr.offset[l + 1]) ++l;
  float* outs[ADOP_MAX_LAYERS] = {out0, out1, out2, out3, out4};
  const i64 local = i - pyr.offset[l];
  const i64 hw = pyr.hw(l);
  const i64 b = local / hw, p = local - b * hw;
  const float w = weight[i];
  if (isinf(depth[i])) depth[i] = 0.0f;  // empty pixels read depth 0 (the public convention)
  float* o = outs[l] + b * channels * hw + p;
  const float* a = accum + i * channels;
  for (int c = 0; c < channels; ++c) o[c * hw] = w > 0.0f ? a[c] / w : background[c];
}
