// Shared device code of the CuPy rasterizer kernels (adop/raster/_cuda.py). NVRTC-compatible: no host headers.
//
// The projection repeats adop/raster/projection.py and kernels/cpu/raster_cpu.cpp operation by operation; the module
// is compiled with --fmad=false so no multiply-add is contracted and all backends agree bit for bit on u, v, z.
#pragma once

#define ADOP_VIEW_PARAMS 28  // R(9) t(3) K(4) dist(8) crop(3) max_r2(1)
#define ADOP_MAX_LAYERS 5
#define ADOP_BORDER 2

typedef long long i64;

// Projects point p into one view; returns the number of layers it reaches (0 = culled) and u, v, z.
__device__ __forceinline__ int adop_project(const float* __restrict__ p, const float* __restrict__ nrm,
                                            const float* __restrict__ radius, const float* __restrict__ view,
                                            int width, int height, int layers, float threshold, float znear,
                                            float* u_out, float* v_out, float* z_out) {
  const float* r = view;
  const float* t = view + 9;
  const float fx = view[12], fy = view[13], cx = view[14], cy = view[15];
  const float k1 = view[16], k2 = view[17], p1 = view[18], p2 = view[19];
  const float k3 = view[20], k4 = view[21], k5 = view[22], k6 = view[23];
  const float zoom = view[24], ox = view[25], oy = view[26], max_r2 = view[27];
  const float X = r[0] * p[0] + r[1] * p[1] + r[2] * p[2] + t[0];
  const float Y = r[3] * p[0] + r[4] * p[1] + r[5] * p[2] + t[1];
  const float Z = r[6] * p[0] + r[7] * p[1] + r[8] * p[2] + t[2];
  *u_out = 0.0f;
  *v_out = 0.0f;
  *z_out = Z;
  if (!(Z > znear)) return 0;
  if (nrm != nullptr) {
    const float nx = r[0] * nrm[0] + r[1] * nrm[1] + r[2] * nrm[2];
    const float ny = r[3] * nrm[0] + r[4] * nrm[1] + r[5] * nrm[2];
    const float nz = r[6] * nrm[0] + r[7] * nrm[1] + r[8] * nrm[2];
    if (X * nx + Y * ny + Z * nz > 0.0f) return 0;
  }
  const float x = X / Z;
  const float y = Y / Z;
  const float r2 = x * x + y * y;
  if (!(r2 < max_r2)) return 0;
  const float r4 = r2 * r2;
  const float r6 = r4 * r2;
  const float a = 1.0f + k1 * r2 + k2 * r4 + k3 * r6;
  const float b = 1.0f + k4 * r2 + k5 * r4 + k6 * r6;
  const float rad = a / b;
  const float xd = x * rad + 2.0f * p1 * x * y + p2 * (r2 + 2.0f * x * x);
  const float yd = y * rad + p1 * (r2 + 2.0f * y * y) + 2.0f * p2 * x * y;
  const float u = zoom * (fx * xd + cx) - ox;
  const float v = zoom * (fy * yd + cy) - oy;
  *u_out = u;
  *v_out = v;
  if (!(u >= 0.0f && u < (float)width && v >= 0.0f && v < (float)height)) return 0;
  if (radius == nullptr) return layers;
  const float rp = fx * zoom * radius[0] / Z;
  int nl = 0;
  float scale = 1.0f;
  for (int l = 0; l < layers; ++l, scale *= 0.5f) nl += (rp * scale >= threshold) ? 1 : 0;
  return nl;
}

// Pyramid geometry: layer l is (W >> l) x (H >> l); flat per-pixel buffers hold the layers one after another, each
// as [B, H_l, W_l].
struct AdopPyramid {
  int w[ADOP_MAX_LAYERS];
  int h[ADOP_MAX_LAYERS];
  i64 offset[ADOP_MAX_LAYERS + 1];
  int layers;

  __device__ __forceinline__ AdopPyramid(int width, int height, int n_layers, i64 views) : layers(n_layers) {
    i64 off = 0;
    for (int l = 0; l < ADOP_MAX_LAYERS; ++l) {
      w[l] = l < n_layers ? (width >> l) : 0;
      h[l] = l < n_layers ? (height >> l) : 0;
      offset[l] = off;
      off += views * (i64)w[l] * h[l];
    }
    offset[ADOP_MAX_LAYERS] = off;
  }
  __device__ __forceinline__ i64 hw(int l) const { return (i64)w[l] * h[l]; }
  // Pixel index inside layer l for continuous (u, v) >= 0, or -1 outside the layer.
  __device__ __forceinline__ i64 pixel(int l, float u, float v, int* x_out, int* y_out) const {
    const float s = 1.0f / (float)(1 << l);  // exact power of two
    const int x = (int)(u * s);
    const int y = (int)(v * s);
    *x_out = x;
    *y_out = y;
    if (x >= w[l] || y >= h[l]) return -1;
    return (i64)y * w[l] + x;
  }
};

// atomicMin on positive floats through their int bits (ADOP's depth pre-pass).
__device__ __forceinline__ void adop_atomic_min_depth(float* addr, float z) {
  if (z < *addr) atomicMin(reinterpret_cast<int*>(addr), __float_as_int(z));
}
