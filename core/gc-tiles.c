#include "gc-tiles.h"

#include <stdlib.h>
#include <string.h>

/* Tile origins along one side: 0, step, 2·step, …, with the last tile flush with the end. */
static int64_t
tile_origins (int64_t *origins, int64_t size, int64_t tile, int64_t overlap)
{
  if (tile >= size)
    {
      origins[0] = 0;
      return 1;
    }
  int64_t step = tile - overlap, count = 0;
  for (int64_t at = 0;; at += step)
    {
      if (at + tile >= size)
        {
          origins[count++] = size - tile;
          return count;
        }
      origins[count++] = at;
    }
}

/* Weight of output position p (in input cells, fractional) inside a tile [start, start + len)
 * of a side of `size` cells: ramps from 0 to 1 across `overlap` cells at interior edges. */
static float
ramp (double p, int64_t start, int64_t len, int64_t size, int64_t overlap)
{
  double w = 1;
  if (start > 0 && p - start < overlap)
    w = (p - start + 0.5) / overlap;
  if (start + len < size && start + len - p < overlap)
    {
      double right = (start + len - p - 0.5) / overlap;
      w = right < w ? right : w;
    }
  return (float) (w < 1e-3 ? 1e-3 : w);
}

gc_status
gc_tiled_apply (float *out, int64_t c_out, int64_t scale, const float *in, int64_t c_in,
                int64_t h, int64_t w, int64_t tile, int64_t overlap, gc_tile_fn fn, void *ctx,
                gc_error *err)
{
  if (overlap >= tile)
    overlap = tile / 2;
  int64_t th = tile < h ? tile : h, tw = tile < w ? tile : w;
  int64_t oh = h * scale, ow = w * scale;
  int64_t *rows = malloc (sizeof (int64_t) * (size_t) (h + 1));
  int64_t *cols = malloc (sizeof (int64_t) * (size_t) (w + 1));
  float *tile_in = malloc (sizeof (float) * (size_t) (c_in * th * tw));
  float *tile_out = malloc (sizeof (float) * (size_t) (c_out * th * tw * scale * scale));
  float *weights = calloc ((size_t) (oh * ow), sizeof (float));
  gc_status s = rows && cols && tile_in && tile_out && weights
                  ? GC_OK
                  : gc_error_set (err, GC_ERR_NOMEM, "out of memory for tiled decoding");
  int64_t n_rows = s == GC_OK ? tile_origins (rows, h, th, overlap) : 0;
  int64_t n_cols = s == GC_OK ? tile_origins (cols, w, tw, overlap) : 0;
  if (s == GC_OK)
    memset (out, 0, sizeof (float) * (size_t) (c_out * oh * ow));
  for (int64_t r = 0; s == GC_OK && r < n_rows; r++)
    for (int64_t k = 0; s == GC_OK && k < n_cols; k++)
      {
        int64_t y0 = rows[r], x0 = cols[k];
        for (int64_t c = 0; c < c_in; c++)
          for (int64_t y = 0; y < th; y++)
            memcpy (tile_in + (c * th + y) * tw, in + (c * h + y0 + y) * w + x0,
                    sizeof (float) * (size_t) tw);
        s = fn (ctx, tile_out, tile_in, th, tw, err);
        for (int64_t y = 0; s == GC_OK && y < th * scale; y++)
          {
            float wy = ramp (y0 + (double) y / scale, y0, th, h, overlap);
            for (int64_t x = 0; x < tw * scale; x++)
              {
                float wgt = wy * ramp (x0 + (double) x / scale, x0, tw, w, overlap);
                int64_t at = (y0 * scale + y) * ow + x0 * scale + x;
                weights[at] += wgt;
                for (int64_t c = 0; c < c_out; c++)
                  out[c * oh * ow + at] += wgt * tile_out[(c * th * scale + y) * tw * scale + x];
              }
          }
      }
  for (int64_t i = 0; s == GC_OK && i < oh * ow; i++)
    for (int64_t c = 0; c < c_out; c++)
      out[c * oh * ow + i] /= weights[i];
  free (rows);
  free (cols);
  free (tile_in);
  free (tile_out);
  free (weights);
  return s;
}
