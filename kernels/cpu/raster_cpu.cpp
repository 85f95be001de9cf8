// Compiled CPU backend of adop.raster: ADOP's one-pixel point rasterizer (forward passes and backward), OpenMP.
//
// Same semantics as the PyTorch reference (adop/raster/_torch.py); the projection below repeats
// adop/raster/projection.py operation by operation (compile with -ffp-contract=off) so depths and pixel positions
// are bit-identical. Buffers are torch tensors handed over as raw pointers (no copies); Python checks dtypes,
// devices, shapes and contiguity before calling.
//
// No atomics: pixel rows are split into horizontal bands whose height is a multiple of 2^(L-1), so a band owns the
// same rows at every pyramid layer. Points are bucketed by (view, band) with a counting sort (stable, ascending
// point index), then each band runs the depth pre-pass, the fuzzy accumulate pass and the resolve pass on
// cache-resident scratch. Results do not depend on the thread count.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

namespace py = pybind11;

namespace {

constexpr int kViewParams = 28;  // R(9) t(3) K(4) dist(8) crop(3) max_r2(1)
constexpr int kBorder = 2;       // spatial gradients only from pixels at least this far inside the layer
constexpr int kMaxLayers = 5;

// A bucketed (view, point) pair: floats u, v, z, meta bits, then the C descriptor values (copied while the points
// are read in order, so the band passes never gather from the descriptor table).
// meta = point index (28 bits) | layers reached (3 bits) << 28 | dropped << 31.
inline uint32_t meta_of(const float* e) {
  uint32_t m;
  std::memcpy(&m, e + 3, sizeof(m));
  return m;
}

template <typename T>
T* ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

// Projects point p into one view; returns the number of layers it reaches (0 = culled) and u, v, z.
inline int project(const float* p, const float* nrm, const float* radius, const float* view, int width, int height,
                   int layers, float threshold, float znear, float* u_out, float* v_out, float* z_out) {
  const float* r = view;
  const float* t = view + 9;
  const float fx = view[12], fy = view[13], cx = view[14], cy = view[15];
  const float k1 = view[16], k2 = view[17], p1 = view[18], p2 = view[19];
  const float k3 = view[20], k4 = view[21], k5 = view[22], k6 = view[23];
  const float zoom = view[24], ox = view[25], oy = view[26], max_r2 = view[27];
  const float X = r[0] * p[0] + r[1] * p[1] + r[2] * p[2] + t[0];
  const float Y = r[3] * p[0] + r[4] * p[1] + r[5] * p[2] + t[1];
  const float Z = r[6] * p[0] + r[7] * p[1] + r[8] * p[2] + t[2];
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
  if (!(u >= 0.0f && u < static_cast<float>(width) && v >= 0.0f && v < static_cast<float>(height))) return 0;
  if (radius == nullptr) return layers;
  const float rp = fx * zoom * radius[0] / Z;
  int nl = 0;
  float scale = 1.0f;
  for (int l = 0; l < layers; ++l, scale *= 0.5f) nl += (rp * scale >= threshold) ? 1 : 0;
  return nl;
}

struct Pyramid {
  int layers = 0;
  int w[kMaxLayers] = {}, h[kMaxLayers] = {};
  int64_t offset[kMaxLayers] = {};  // start of layer l in the flat [sum_l B*H_l*W_l] weight/depth buffers
  float scale[kMaxLayers] = {};

  Pyramid(int width, int height, int n_layers, int64_t views) : layers(n_layers) {
    int64_t off = 0;
    for (int l = 0; l < n_layers; ++l) {
      w[l] = width >> l;
      h[l] = height >> l;
      offset[l] = off;
      off += views * static_cast<int64_t>(w[l]) * h[l];
      scale[l] = 1.0f / static_cast<float>(1 << l);
    }
  }
  int64_t hw(int l) const { return static_cast<int64_t>(w[l]) * h[l]; }
  // Flat pixel index of (x, y) in layer l for the point at (u, v), or -1 when it falls outside the layer.
  int64_t pixel(int l, float u, float v, int* x_out, int* y_out) const {
    const int x = static_cast<int>(u * scale[l]);  // u, v >= 0: truncation == floor
    const int y = static_cast<int>(v * scale[l]);
    *x_out = x;
    *y_out = y;
    if (x >= w[l] || y >= h[l]) return -1;
    return static_cast<int64_t>(y) * w[l] + x;
  }
};

void forward(std::uintptr_t positions_p, std::uintptr_t normals_p, std::uintptr_t radius_p,
             std::uintptr_t descriptors_p, std::uintptr_t background_p, std::uintptr_t views_p, std::uintptr_t drop_p,
             std::uintptr_t proj_p, const std::vector<std::uintptr_t>& feature_ps, std::uintptr_t weight_p,
             std::uintptr_t depth_p, std::uintptr_t entries_p, std::uintptr_t slot_p, std::uintptr_t task_start_p,
             int64_t n_points, int64_t n_views, int channels, int width, int height, int layers, int band_h,
             float znear, float threshold, float accept, int n_threads) {
  const float* pos = ptr<const float>(positions_p);
  const float* nrm = ptr<const float>(normals_p);
  const float* rad = ptr<const float>(radius_p);
  const float* desc = ptr<const float>(descriptors_p);
  const float* bg = ptr<const float>(background_p);
  const float* views = ptr<const float>(views_p);
  const uint8_t* drop = ptr<const uint8_t>(drop_p);
  float* proj = ptr<float>(proj_p);
  float* weight = ptr<float>(weight_p);
  float* depth = ptr<float>(depth_p);
  float* entries = ptr<float>(entries_p);
  int32_t* slot = ptr<int32_t>(slot_p);
  int64_t* task_start = ptr<int64_t>(task_start_p);
  const Pyramid pyr(width, height, layers, n_views);
  const int64_t n_bands = (height + band_h - 1) / band_h;
  const int64_t n_tasks = n_views * n_bands;
  const int64_t stride = 4 + channels;
  const int max_threads = std::max(1, n_threads);
  std::vector<int64_t> counts(static_cast<size_t>(max_threads) * n_tasks, 0);
  int64_t scratch_size = 0;
  for (int l = 0; l < layers; ++l) scratch_size += static_cast<int64_t>(band_h >> l) * pyr.w[l] * channels;

#pragma omp parallel num_threads(max_threads)
  {
    const int tid = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    const int64_t n0 = n_points * tid / nt, n1 = n_points * (tid + 1) / nt;
    int64_t* cnt = counts.data() + static_cast<int64_t>(tid) * n_tasks;
    for (int64_t b = 0; b < n_views; ++b) {
      const float* view = views + b * kViewParams;
      for (int64_t n = n0; n < n1; ++n) {
        float u = 0.0f, v = 0.0f, z = 0.0f;
        const int nl = project(pos + 3 * n, nrm ? nrm + 3 * n : nullptr, rad ? rad + n : nullptr, view, width,
                               height, layers, threshold, znear, &u, &v, &z);
        float* pj = proj + (b * n_points + n) * 4;
        pj[0] = u;
        pj[1] = v;
        pj[2] = z;
        pj[3] = static_cast<float>(nl);
        if (nl > 0) ++cnt[b * n_bands + static_cast<int>(v) / band_h];
      }
    }
#pragma omp barrier
#pragma omp single
    {
      int64_t total = 0;
      for (int64_t task = 0; task < n_tasks; ++task) {
        task_start[task] = total;
        for (int t = 0; t < nt; ++t) {
          const int64_t c = counts[static_cast<int64_t>(t) * n_tasks + task];
          counts[static_cast<int64_t>(t) * n_tasks + task] = total;
          total += c;
        }
      }
      task_start[n_tasks] = total;
    }
    for (int64_t b = 0; b < n_views; ++b) {
      for (int64_t n = n0; n < n1; ++n) {
        const float* pj = proj + (b * n_points + n) * 4;
        const uint32_t nl = static_cast<uint32_t>(pj[3]);
        if (nl == 0) {
          slot[b * n_points + n] = -1;
          continue;
        }
        const uint32_t dropped = (drop && drop[b * n_points + n]) ? 1u : 0u;
        const int64_t at = cnt[b * n_bands + static_cast<int>(pj[1]) / band_h]++;
        slot[b * n_points + n] = static_cast<int32_t>(at);
        float* e = entries + at * stride;
        e[0] = pj[0];
        e[1] = pj[1];
        e[2] = pj[2];
        const uint32_t meta = static_cast<uint32_t>(n) | (nl << 28) | (dropped << 31);
        std::memcpy(e + 3, &meta, sizeof(meta));
        std::memcpy(e + 4, desc + n * channels, sizeof(float) * channels);
      }
    }
#pragma omp barrier
    std::vector<float> acc(static_cast<size_t>(std::max<int64_t>(scratch_size, 1)));
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < n_tasks; ++task) {
      const int64_t b = task / n_bands;
      const int band = static_cast<int>(task % n_bands);
      int y0[kMaxLayers], y1[kMaxLayers];
      int64_t acc_off[kMaxLayers];
      float* dep[kMaxLayers];
      float* wgt[kMaxLayers];
      int64_t off = 0;
      for (int l = 0; l < layers; ++l) {
        y0[l] = std::min((band * band_h) >> l, pyr.h[l]);
        y1[l] = std::min(((band + 1) * band_h) >> l, pyr.h[l]);
        acc_off[l] = off;
        off += static_cast<int64_t>(band_h >> l) * pyr.w[l] * channels;
        dep[l] = depth + pyr.offset[l] + b * pyr.hw(l);
        wgt[l] = weight + pyr.offset[l] + b * pyr.hw(l);
        const int64_t p0 = static_cast<int64_t>(y0[l]) * pyr.w[l], p1 = static_cast<int64_t>(y1[l]) * pyr.w[l];
        std::fill(dep[l] + p0, dep[l] + p1, std::numeric_limits<float>::infinity());
        std::fill(wgt[l] + p0, wgt[l] + p1, 0.0f);
        std::fill(acc.begin() + acc_off[l], acc.begin() + acc_off[l] + (p1 - p0) * channels, 0.0f);
      }
      const float* es = entries + task_start[task] * stride;
      const int64_t ne = task_start[task + 1] - task_start[task];
      for (int64_t i = 0; i < ne; ++i) {  // pass 1: depth (dropped points included)
        const float* e = es + i * stride;
        const int nl = static_cast<int>((meta_of(e) >> 28) & 7u);
        for (int l = 0; l < nl; ++l) {
          int x, y;
          const int64_t idx = pyr.pixel(l, e[0], e[1], &x, &y);
          if (idx < 0) continue;
          if (e[2] < dep[l][idx]) dep[l][idx] = e[2];
        }
      }
      for (int64_t i = 0; i < ne; ++i) {  // pass 2: fuzzy accumulate of the kept points
        const float* e = es + i * stride;
        const uint32_t meta = meta_of(e);
        if (meta >> 31) continue;
        const int nl = static_cast<int>((meta >> 28) & 7u);
        const float* d = e + 4;
        for (int l = 0; l < nl; ++l) {
          int x, y;
          const int64_t idx = pyr.pixel(l, e[0], e[1], &x, &y);
          if (idx < 0) continue;
          if (!(e[2] <= dep[l][idx] * accept)) continue;
          wgt[l][idx] += 1.0f;
          float* a = acc.data() + acc_off[l] + (static_cast<int64_t>(y - y0[l]) * pyr.w[l] + x) * channels;
          for (int c = 0; c < channels; ++c) a[c] += d[c];
        }
      }
      for (int l = 0; l < layers; ++l) {  // pass 3: resolve (mean or background), planar [B,C,H,W] output
        float* out = ptr<float>(feature_ps[l]);
        const int64_t p0 = static_cast<int64_t>(y0[l]) * pyr.w[l], p1 = static_cast<int64_t>(y1[l]) * pyr.w[l];
        for (int64_t p = p0; p < p1; ++p) {  // empty pixels read depth 0 (the public convention)
          if (dep[l][p] == std::numeric_limits<float>::infinity()) dep[l][p] = 0.0f;
        }
        for (int c = 0; c < channels; ++c) {
          float* o = out + (b * channels + c) * pyr.hw(l);
          const float* a = acc.data() + acc_off[l] + c;
          for (int64_t p = p0; p < p1; ++p) {
            const float w = wgt[l][p];
            o[p] = w > 0.0f ? a[(p - p0) * channels] / w : bg[c];
          }
        }
      }
    }
  }
}

void backward(std::uintptr_t entries_p, std::uintptr_t slot_p, std::uintptr_t task_start_p,
              std::uintptr_t weight_p, std::uintptr_t depth_p, const std::vector<std::uintptr_t>& feature_ps,
              const std::vector<std::uintptr_t>& grad_ps, std::uintptr_t grad_desc_p, std::uintptr_t grad_bg_p,
              std::uintptr_t screen_p, std::uintptr_t count_p, int64_t n_points, int64_t n_views, int channels,
              int width, int height, int layers, int band_h, float accept, bool ghost, int n_threads) {
  const float* entries = ptr<const float>(entries_p);
  const int32_t* slot = ptr<const int32_t>(slot_p);
  const int64_t* task_start = ptr<const int64_t>(task_start_p);
  const float* weight = ptr<const float>(weight_p);
  const float* depth = ptr<const float>(depth_p);
  float* grad_desc = ptr<float>(grad_desc_p);
  float* grad_bg = ptr<float>(grad_bg_p);
  float* screen = ptr<float>(screen_p);
  float* count = ptr<float>(count_p);
  const Pyramid pyr(width, height, layers, n_views);
  const int max_threads = std::max(1, n_threads);
  const int64_t C = channels;
  const int64_t stride = 4 + C;
  const int64_t n_bands = (height + band_h - 1) / band_h;
  const int64_t n_tasks = n_views * n_bands;

  if (grad_desc != nullptr || screen != nullptr) {
    // Phase 1, band order (pixel accesses stay in the band's rows): per entry C descriptor-gradient values, then
    // the screen-space gradient (x, y) and the number of contributing layers.
    const int64_t out_stride = C + 3;
    std::unique_ptr<float[]> out(new float[std::max<int64_t>(task_start[n_tasks], 1) * out_stride]);
#pragma omp parallel for num_threads(max_threads) schedule(dynamic, 1)
    for (int64_t task = 0; task < n_tasks; ++task) {
      const int64_t b = task / n_bands;
      for (int64_t i = task_start[task]; i < task_start[task + 1]; ++i) {
        const float* e = entries + i * stride;
        const uint32_t meta = meta_of(e);
        const bool dropped = (meta >> 31) != 0;
        const int nl = static_cast<int>((meta >> 28) & 7u);
        const float u = e[0], v = e[1], z = e[2];
        const float* own = e + 4;
        float* o = out.get() + i * out_stride;
        for (int64_t c = 0; c < out_stride; ++c) o[c] = 0.0f;
        if (grad_desc != nullptr && !dropped) {
          for (int l = 0; l < nl; ++l) {
            int x, y;
            const int64_t idx = pyr.pixel(l, u, v, &x, &y);
            if (idx < 0) continue;
            const int64_t base = pyr.offset[l] + b * pyr.hw(l) + idx;
            if (!(z <= depth[base] * accept)) continue;
            const float w = weight[base];
            const float* g = ptr<const float>(grad_ps[l]) + b * C * pyr.hw(l) + idx;
            for (int64_t c = 0; c < C; ++c) o[c] += g[c * pyr.hw(l)] / w;
          }
        }
        if (screen != nullptr && (ghost ? dropped : !dropped)) {
          float gx = 0.0f, gy = 0.0f, cnt = 0.0f;
          for (int l = 0; l < nl; ++l) {
            int x, y;
            const int64_t idx = pyr.pixel(l, u, v, &x, &y);
            if (idx < 0) continue;
            const int64_t hw = pyr.hw(l);
            if (!(z <= depth[pyr.offset[l] + b * hw + idx] * accept)) break;  // occluded: stop (ADOP's break)
            if (x < kBorder || x >= pyr.w[l] - kBorder || y < kBorder || y >= pyr.h[l] - kBorder) continue;
            const float* img = ptr<const float>(feature_ps[l]) + b * C * hw + idx;
            const float* g = ptr<const float>(grad_ps[l]) + b * C * hw + idx;
            const int64_t offs[4] = {1, -1, pyr.w[l], -static_cast<int64_t>(pyr.w[l])};
            float d[4];
            for (int k = 0; k < 4; ++k) {
              float s = 0.0f;
              for (int64_t c = 0; c < C; ++c) s += (own[c] - img[c * hw + offs[k]]) * g[c * hw + offs[k]];
              d[k] = s;
            }
            const float scale = 0.5f / static_cast<float>(C) * pyr.scale[l];
            gx += (d[0] - d[1]) * scale;
            gy += (d[2] - d[3]) * scale;
            cnt += 1.0f;
          }
          o[C] = gx;
          o[C + 1] = gy;
          o[C + 2] = cnt;
        }
      }
    }
    // Phase 2, point order: slots of one band grow with the point index, so these reads are a few ascending
    // streams. Each point is owned by one thread (no races for any number of views).
#pragma omp parallel for num_threads(max_threads) schedule(static)
    for (int64_t n = 0; n < n_points; ++n) {
      for (int64_t b = 0; b < n_views; ++b) {
        const int32_t at = slot[b * n_points + n];
        if (at < 0) continue;
        const float* o = out.get() + static_cast<int64_t>(at) * out_stride;
        if (grad_desc != nullptr) {
          for (int64_t c = 0; c < C; ++c) grad_desc[n * C + c] += o[c];
        }
        if (screen != nullptr) {
          screen[(b * n_points + n) * 2] = o[C];
          screen[(b * n_points + n) * 2 + 1] = o[C + 1];
          count[b * n_points + n] = o[C + 2];
        }
      }
    }
  }
  if (grad_bg != nullptr) {
    std::vector<double> total(C, 0.0);
#pragma omp parallel num_threads(max_threads)
    {
      std::vector<double> local(C, 0.0);
      for (int l = 0; l < layers; ++l) {
        const int64_t hw = pyr.hw(l);
        for (int64_t b = 0; b < n_views; ++b) {
          const float* w = weight + pyr.offset[l] + b * hw;
          const float* g = ptr<const float>(grad_ps[l]) + b * C * hw;
#pragma omp for schedule(static) nowait
          for (int64_t p = 0; p < hw; ++p) {
            if (w[p] != 0.0f) continue;
            for (int64_t c = 0; c < C; ++c) local[c] += g[c * hw + p];
          }
        }
      }
#pragma omp critical
      for (int64_t c = 0; c < C; ++c) total[c] += local[c];
    }
    for (int64_t c = 0; c < C; ++c) grad_bg[c] += static_cast<float>(total[c]);
  }
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "adop.raster compiled CPU kernels (OpenMP); see kernels/cpu/raster_cpu.cpp";
  m.def("forward", &forward, py::call_guard<py::gil_scoped_release>());
  m.def("backward", &backward, py::call_guard<py::gil_scoped_release>());
}
