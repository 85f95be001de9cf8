// Compiled CPU backend of adop.raster: ADOP's one-pixel point rasterizer (forward passes and backward), OpenMP.
//
// Same semantics as the PyTorch reference (adop/raster/_torch.py); the projection below repeats
// adop/raster/projection.py operation by operation (compile with -ffp-contract=off) so depths and pixel positions
// are bit-identical. Buffers are torch tensors handed over as raw pointers (no copies); Python checks dtypes,
// devices, shapes and contiguity before calling.
//
// No atomics: pixel rows are split into horizontal bands whose height is a multiple of 2^(L-1), so a band owns the
// same rows at every pyramid layer. Points are projected once per (view, point) into a compact record, bucketed by
// (view, band) with a counting sort (stable, ascending point index), then each band runs the depth pre-pass, the
// fuzzy accumulate pass and the resolve pass on cache-resident scratch. Backward walks the same buckets. Results do
// not depend on the thread count.
//
// Performance notes (measured with callgrind and CPU time at 1e6 points, 1080p, 4 layers): the projection is a
// branch-free loop over blocks of points so the compiler vectorises it (plain SSE2, no -march=native); per-layer
// pixels come from the layer-0 pixel by shifts (floor(u·2^-l) == floor(u) >> l for u >= 0, exactly) and are
// computed once per entry in pass 1; the band scratch is planar so the resolve vectorises; backward sums the
// background gradient band by band while the band's rows are in cache, and scatters per-point results in point
// order (direct writes from the bands were memory-latency bound).
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
constexpr int kBlock = 256;      // points projected per vectorised block

// A bucketed (view, point) pair: int32 layer-0 pixel x, y; float z; meta bits; then the C descriptor values (copied
// while the points are read in order, so the band passes never gather from the descriptor table).
// meta = point index (28 bits) | layers reached (3 bits) << 28 | dropped << 31.
struct Entry {
  int32_t x, y;
  float z;
  uint32_t meta;
};
constexpr int64_t kEntryHead = sizeof(Entry) / sizeof(float);  // floats before the descriptor values

template <typename T>
T* ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

// Projects points [n0, n1) (at most kBlock) into one view: layers reached (0 = culled), layer-0 pixel and z.
// Branch-free on purpose (every point computes everything, culling is a mask combined with `&`, the optional inputs
// are template flags) so the loop vectorises; the arithmetic is the reference's, operation by operation, so the
// surviving values are bit-identical.
template <bool kNormals, bool kRadius>
void project_block(const float* pos, const float* nrm, const float* radius, const float* view, int64_t n0,
                   int64_t n1, int width, int height, int layers, float threshold, float znear, int32_t* nl_out,
                   int32_t* x_out, int32_t* y_out, float* z_out) {
  const float r0 = view[0], r1 = view[1], r2_ = view[2], r3 = view[3], r4_ = view[4], r5 = view[5];
  const float r6_ = view[6], r7 = view[7], r8 = view[8], t0 = view[9], t1 = view[10], t2 = view[11];
  const float fx = view[12], fy = view[13], cx = view[14], cy = view[15];
  const float k1 = view[16], k2 = view[17], p1 = view[18], p2 = view[19];
  const float k3 = view[20], k4 = view[21], k5 = view[22], k6 = view[23];
  const float zoom = view[24], ox = view[25], oy = view[26], max_r2 = view[27];
  const float fw = static_cast<float>(width), fh = static_cast<float>(height);
  const int m = static_cast<int>(n1 - n0);
  // De-interleave xyz first: plain SSE2 cannot vectorise stride-3 loads, contiguous ones it can.
  float px[kBlock], py[kBlock], pz[kBlock], qx[kBlock], qy[kBlock], qz[kBlock];
  for (int i = 0; i < m; ++i) {
    px[i] = pos[3 * (n0 + i)], py[i] = pos[3 * (n0 + i) + 1], pz[i] = pos[3 * (n0 + i) + 2];
    if (kNormals) qx[i] = nrm[3 * (n0 + i)], qy[i] = nrm[3 * (n0 + i) + 1], qz[i] = nrm[3 * (n0 + i) + 2];
  }
  for (int i = 0; i < m; ++i) {
    const float X = r0 * px[i] + r1 * py[i] + r2_ * pz[i] + t0;
    const float Y = r3 * px[i] + r4_ * py[i] + r5 * pz[i] + t1;
    const float Z = r6_ * px[i] + r7 * py[i] + r8 * pz[i] + t2;
    bool ok = Z > znear;
    if (kNormals) {
      const float nx = r0 * qx[i] + r1 * qy[i] + r2_ * qz[i];
      const float ny = r3 * qx[i] + r4_ * qy[i] + r5 * qz[i];
      const float nz = r6_ * qx[i] + r7 * qy[i] + r8 * qz[i];
      ok &= !(X * nx + Y * ny + Z * nz > 0.0f);
    }
    const float x = X / Z;
    const float y = Y / Z;
    const float rr2 = x * x + y * y;
    ok &= rr2 < max_r2;
    const float rr4 = rr2 * rr2;
    const float rr6 = rr4 * rr2;
    const float a = 1.0f + k1 * rr2 + k2 * rr4 + k3 * rr6;
    const float b = 1.0f + k4 * rr2 + k5 * rr4 + k6 * rr6;
    const float rad = a / b;
    const float xd = x * rad + 2.0f * p1 * x * y + p2 * (rr2 + 2.0f * x * x);
    const float yd = y * rad + p1 * (rr2 + 2.0f * y * y) + 2.0f * p2 * x * y;
    const float u = zoom * (fx * xd + cx) - ox;
    const float v = zoom * (fy * yd + cy) - oy;
    ok &= (u >= 0.0f) & (u < fw) & (v >= 0.0f) & (v < fh);
    nl_out[i] = ok ? layers : 0;
    // u, v >= 0 where ok: truncation == floor. Culled points may hold NaN or huge values: zero them before the
    // conversion (converting those would be undefined behaviour).
    x_out[i] = static_cast<int32_t>(ok ? u : 0.0f);
    y_out[i] = static_cast<int32_t>(ok ? v : 0.0f);
    z_out[i] = Z;
  }
  if (kRadius) {  // stochastic discarding: layer l is reached while rp·2^-l >= threshold (a prefix of the layers)
    for (int i = 0; i < m; ++i) {  // separate loop, unrolled and branch-free: it vectorises
      const float rp = fx * zoom * radius[n0 + i] / z_out[i];
      const int reached = static_cast<int>(rp >= threshold) + static_cast<int>(rp * 0.5f >= threshold) +
                          static_cast<int>(rp * 0.25f >= threshold) + static_cast<int>(rp * 0.125f >= threshold) +
                          static_cast<int>(rp * 0.0625f >= threshold);
      nl_out[i] = std::min(nl_out[i], reached);  // nl_out is 0 (culled) or `layers`
    }
  }
}

using ProjectFn = decltype(&project_block<false, false>);

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
};

// Rows [y0[l], y1[l]) of every layer owned by one band, and the band's flat pixel offset per layer.
struct Band {
  int y0[kMaxLayers], y1[kMaxLayers];
  int64_t p0[kMaxLayers], p1[kMaxLayers];
  Band(const Pyramid& pyr, int band, int band_h) {
    for (int l = 0; l < pyr.layers; ++l) {
      y0[l] = std::min((band * band_h) >> l, pyr.h[l]);
      y1[l] = std::min(((band + 1) * band_h) >> l, pyr.h[l]);
      p0[l] = static_cast<int64_t>(y0[l]) * pyr.w[l];
      p1[l] = static_cast<int64_t>(y1[l]) * pyr.w[l];
    }
  }
  // Index of layer-0 pixel (x, y) at layer l relative to the band's first pixel there, or -1 outside the layer.
  int64_t pixel(const Pyramid& pyr, int l, int32_t x, int32_t y) const {
    const int xl = x >> l, yl = y >> l;
    if (xl >= pyr.w[l] || yl >= pyr.h[l]) return -1;
    return static_cast<int64_t>(yl - y0[l]) * pyr.w[l] + xl;
  }
};

// Pass 3 for one layer of one band: mean of the accumulated descriptors or the background, planar [C,H,W] output.
// The band scratch is planar too ([C, P], P = the band's pixels), so every loop here is a branch-free contiguous
// one that vectorises.
void resolve(const float* acc, const float* wgt, float* dep, const float* bg, float* out, int64_t hw, int64_t p0,
             int64_t n, int channels) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (int64_t p = 0; p < n; ++p) dep[p] = dep[p] == kInf ? 0.0f : dep[p];  // empty pixels read depth 0
  for (int c = 0; c < channels; ++c) {
    float* o = out + c * hw + p0;
    const float* a = acc + c * n;
    const float b = bg[c];
    for (int64_t p = 0; p < n; ++p) {  // unconditional division by a safe divisor: -ftrapping-math keeps a
      const float w = wgt[p];           // conditional one from being vectorised
      const float mean = a[p] / (w > 0.0f ? w : 1.0f);
      o[p] = w > 0.0f ? mean : b;
    }
  }
}

void forward(std::uintptr_t positions_p, std::uintptr_t normals_p, std::uintptr_t radius_p,
             std::uintptr_t descriptors_p, std::uintptr_t background_p, std::uintptr_t views_p, std::uintptr_t drop_p,
             const std::vector<std::uintptr_t>& feature_ps, std::uintptr_t weight_p, std::uintptr_t depth_p,
             std::uintptr_t entries_p, std::uintptr_t slot_p, std::uintptr_t task_start_p, int64_t n_points,
             int64_t n_views, int channels, int width, int height, int layers, int band_h, float znear,
             float threshold, float accept, int n_threads) {
  const float* pos = ptr<const float>(positions_p);
  const float* nrm = ptr<const float>(normals_p);
  const float* rad = ptr<const float>(radius_p);
  const float* desc = ptr<const float>(descriptors_p);
  const float* bg = ptr<const float>(background_p);
  const float* views = ptr<const float>(views_p);
  const uint8_t* drop = ptr<const uint8_t>(drop_p);
  float* weight = ptr<float>(weight_p);
  float* depth = ptr<float>(depth_p);
  float* entries = ptr<float>(entries_p);
  int32_t* slot = ptr<int32_t>(slot_p);
  int64_t* task_start = ptr<int64_t>(task_start_p);
  const Pyramid pyr(width, height, layers, n_views);
  const int64_t n_bands = (height + band_h - 1) / band_h;
  const int64_t n_tasks = n_views * n_bands;
  const int64_t stride = kEntryHead + channels;
  const int max_threads = std::max(1, n_threads);
  std::vector<int64_t> counts(static_cast<size_t>(max_threads) * n_tasks, 0);
  // Compact projection record per (view, point), written once by the projection and read once by the bucketing.
  std::unique_ptr<Entry[]> rec(new Entry[std::max<int64_t>(n_views * n_points, 1)]);
  int64_t scratch_size = 0;
  for (int l = 0; l < layers; ++l) scratch_size += static_cast<int64_t>(band_h >> l) * pyr.w[l] * channels;

#pragma omp parallel num_threads(max_threads)
  {
    const int tid = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    const int64_t n0 = n_points * tid / nt, n1 = n_points * (tid + 1) / nt;
    int64_t* cnt = counts.data() + static_cast<int64_t>(tid) * n_tasks;
    int32_t bnl[kBlock], bx[kBlock], by[kBlock];
    float bz[kBlock];
    const ProjectFn project = nrm ? (rad ? project_block<true, true> : project_block<true, false>)
                                  : (rad ? project_block<false, true> : project_block<false, false>);
    for (int64_t b = 0; b < n_views; ++b) {  // projection + band histogram
      const float* view = views + b * kViewParams;
      for (int64_t s = n0; s < n1; s += kBlock) {
        const int64_t e = std::min(s + kBlock, n1);
        project(pos, nrm, rad, view, s, e, width, height, layers, threshold, znear, bnl, bx, by, bz);
        Entry* r = rec.get() + b * n_points + s;
        int64_t* c = cnt + b * n_bands;
        for (int i = 0; i < static_cast<int>(e - s); ++i) {
          r[i] = Entry{bx[i], by[i], bz[i], static_cast<uint32_t>(bnl[i])};
          if (bnl[i] > 0) ++c[by[i] / band_h];
        }
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
    for (int64_t b = 0; b < n_views; ++b) {  // scatter into the (view, band) buckets, ascending point index
      const Entry* r = rec.get() + b * n_points;
      int64_t* c = cnt + b * n_bands;
      for (int64_t n = n0; n < n1; ++n) {
        const uint32_t nl = r[n].meta;
        if (nl == 0) {
          slot[b * n_points + n] = -1;
          continue;
        }
        const uint32_t dropped = (drop && drop[b * n_points + n]) ? 1u : 0u;
        const int64_t at = c[r[n].y / band_h]++;
        slot[b * n_points + n] = static_cast<int32_t>(at);
        float* e = entries + at * stride;
        const Entry head{r[n].x, r[n].y, r[n].z, static_cast<uint32_t>(n) | (nl << 28) | (dropped << 31)};
        std::memcpy(e, &head, sizeof(head));
        for (int ch = 0; ch < channels; ++ch) e[kEntryHead + ch] = desc[n * channels + ch];
      }
    }
#pragma omp barrier
    std::vector<float> acc(static_cast<size_t>(std::max<int64_t>(scratch_size, 1)));
    std::vector<int32_t> lidx;
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < n_tasks; ++task) {
      const int64_t b = task / n_bands;
      const Band band(pyr, static_cast<int>(task % n_bands), band_h);
      float* dep[kMaxLayers];
      float* wgt[kMaxLayers];
      float* ac[kMaxLayers];
      int64_t off = 0;
      for (int l = 0; l < layers; ++l) {  // band-relative views of the layer buffers, initialised
        const int64_t np = band.p1[l] - band.p0[l];
        dep[l] = depth + pyr.offset[l] + b * pyr.hw(l) + band.p0[l];
        wgt[l] = weight + pyr.offset[l] + b * pyr.hw(l) + band.p0[l];
        ac[l] = acc.data() + off;
        off += static_cast<int64_t>(band_h >> l) * pyr.w[l] * channels;
        std::fill(dep[l], dep[l] + np, std::numeric_limits<float>::infinity());
        std::fill(wgt[l], wgt[l] + np, 0.0f);
        std::fill(ac[l], ac[l] + np * channels, 0.0f);
      }
      const float* es = entries + task_start[task] * stride;
      const int64_t ne = task_start[task + 1] - task_start[task];
      // Pass 1: depth (dropped points included). Each entry's band-relative pixel per layer (-1: outside the layer
      // or not reached) is kept for pass 2 instead of being recomputed.
      if (static_cast<int64_t>(lidx.size()) < ne * layers) lidx.resize(ne * layers);
      for (int64_t i = 0; i < ne; ++i) {
        Entry h;
        std::memcpy(&h, es + i * stride, sizeof(h));
        const int nl = static_cast<int>((h.meta >> 28) & 7u);
        int32_t* li = lidx.data() + i * layers;
        for (int l = 0; l < layers; ++l) {
          const int32_t idx = l < nl ? static_cast<int32_t>(band.pixel(pyr, l, h.x, h.y)) : -1;
          li[l] = idx;
          if (idx >= 0 && h.z < dep[l][idx]) dep[l][idx] = h.z;
        }
      }
      for (int64_t i = 0; i < ne; ++i) {  // pass 2: fuzzy accumulate of the kept points
        const float* e = es + i * stride;
        Entry h;
        std::memcpy(&h, e, sizeof(h));
        if (h.meta >> 31) continue;
        const float* d = e + kEntryHead;
        const int32_t* li = lidx.data() + i * layers;
        for (int l = 0; l < layers; ++l) {
          const int32_t idx = li[l];
          if (idx < 0 || !(h.z <= dep[l][idx] * accept)) continue;
          wgt[l][idx] += 1.0f;
          const int64_t np = band.p1[l] - band.p0[l];
          for (int c = 0; c < channels; ++c) ac[l][c * np + idx] += d[c];
        }
      }
      for (int l = 0; l < layers; ++l) {  // pass 3: resolve
        float* out = ptr<float>(feature_ps[l]) + b * channels * pyr.hw(l);
        const int64_t np = band.p1[l] - band.p0[l];
        resolve(ac[l], wgt[l], dep[l], bg, out, pyr.hw(l), band.p0[l], np, channels);
      }
    }
  }
}

// Sum of the output gradient over the empty pixels of one band's rows (dL/dbackground), one partial per channel.
// Like the reference, the gradient is multiplied by the 0/1 emptiness mask; float row sums (vectorised with
// omp simd) are added into doubles.
void background_partial(const Pyramid& pyr, const Band& band, const float* weight, const float* grad, int64_t b,
                        int l, int channels, double* out) {
  const int64_t hw = pyr.hw(l);
  const float* w = weight + pyr.offset[l] + b * hw;
  const float* g = grad + b * channels * hw;
  std::vector<float> mask(pyr.w[l]);
  for (int y = band.y0[l]; y < band.y1[l]; ++y) {
    const int64_t r = static_cast<int64_t>(y) * pyr.w[l];
    for (int x = 0; x < pyr.w[l]; ++x) mask[x] = w[r + x] == 0.0f ? 1.0f : 0.0f;
    for (int c = 0; c < channels; ++c) {
      const float* gc = g + c * hw + r;
      float s = 0.0f;
#pragma omp simd reduction(+ : s)
      for (int x = 0; x < pyr.w[l]; ++x) s += gc[x] * mask[x];
      out[c] += s;
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
  const int64_t stride = kEntryHead + C;
  const int64_t n_bands = (height + band_h - 1) / band_h;
  const int64_t n_tasks = n_views * n_bands;
  const bool per_point = grad_desc != nullptr || screen != nullptr;
  // Phase 1, band order (pixel accesses stay in the band's rows), writes one record per entry: C descriptor-gradient
  // values, the screen-space gradient (x, y) and the number of contributing layers. Writing straight into the
  // per-point outputs instead would touch a new cache line (and often a new page) per entry: the points of one band
  // are spread over the whole point range, which made that version memory-latency bound.
  const int64_t out_stride = C + 3;
  std::unique_ptr<float[]> out(new float[per_point ? std::max<int64_t>(task_start[n_tasks], 1) * out_stride : 1]);
  // Per (view, band) background partials, summed in task order below: the result does not depend on the threads.
  std::vector<double> bg_part(grad_bg != nullptr ? n_tasks * C : 0, 0.0);
#pragma omp parallel for num_threads(max_threads) schedule(dynamic, 1)
  for (int64_t task = 0; task < n_tasks; ++task) {
    const int64_t b = task / n_bands;
    const Band band(pyr, static_cast<int>(task % n_bands), band_h);
    if (grad_bg != nullptr) {  // while this band's rows of the gradient pass through the cache
      for (int l = 0; l < layers; ++l)
        background_partial(pyr, band, weight, ptr<const float>(grad_ps[l]), b, l, channels, &bg_part[task * C]);
    }
    if (!per_point) continue;
    for (int64_t i = task_start[task]; i < task_start[task + 1]; ++i) {
      const float* e = entries + i * stride;
      Entry h;
      std::memcpy(&h, e, sizeof(h));
      const bool dropped = (h.meta >> 31) != 0;
      const int nl = static_cast<int>((h.meta >> 28) & 7u);
      const float* own = e + kEntryHead;
      float* o = out.get() + i * out_stride;
      for (int64_t c = 0; c < out_stride; ++c) o[c] = 0.0f;
      if (grad_desc != nullptr && !dropped) {
        for (int l = 0; l < nl; ++l) {
          const int64_t idx = band.pixel(pyr, l, h.x, h.y);
          if (idx < 0) continue;
          const int64_t pix = band.p0[l] + idx;
          const int64_t base = pyr.offset[l] + b * pyr.hw(l) + pix;
          if (!(h.z <= depth[base] * accept)) continue;
          const float inv = 1.0f / weight[base];  // one division per layer, not per channel
          const float* g = ptr<const float>(grad_ps[l]) + b * C * pyr.hw(l) + pix;
          for (int64_t c = 0; c < C; ++c) o[c] += g[c * pyr.hw(l)] * inv;
        }
      }
      if (screen != nullptr && (ghost ? dropped : !dropped)) {
        float gx = 0.0f, gy = 0.0f, cnt = 0.0f;
        for (int l = 0; l < nl; ++l) {
          const int64_t idx = band.pixel(pyr, l, h.x, h.y);
          if (idx < 0) continue;
          const int64_t hw = pyr.hw(l);
          const int64_t pix = band.p0[l] + idx;
          if (!(h.z <= depth[pyr.offset[l] + b * hw + pix] * accept)) break;  // occluded: stop (ADOP's break)
          const int x = h.x >> l, y = h.y >> l;
          if (x < kBorder || x >= pyr.w[l] - kBorder || y < kBorder || y >= pyr.h[l] - kBorder) continue;
          const float* img = ptr<const float>(feature_ps[l]) + b * C * hw + pix;
          const float* g = ptr<const float>(grad_ps[l]) + b * C * hw + pix;
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
  if (per_point) {
    // Phase 2, point order: sequential writes; the slots of one band grow with the point index, so the reads of
    // `out` are a few ascending streams. Each point is owned by one thread (no races for any number of views).
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
    for (int64_t c = 0; c < C; ++c) {
      double total = 0.0;
      for (int64_t task = 0; task < n_tasks; ++task) total += bg_part[task * C + c];
      grad_bg[c] += static_cast<float>(total);
    }
  }
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "adop.raster compiled CPU kernels (OpenMP); see kernels/cpu/raster_cpu.cpp";
  m.def("forward", &forward, py::call_guard<py::gil_scoped_release>());
  m.def("backward", &backward, py::call_guard<py::gil_scoped_release>());
}
