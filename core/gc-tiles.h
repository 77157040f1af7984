/* gc-tiles.h — running an image-to-image function in overlapping tiles and blending the seams.
 *
 * The VAE decoder's activations grow with the image (128 channels at full resolution): at
 * 2048² one of them alone takes 2 GiB. Decoding tile by tile bounds the memory by the tile
 * size. Tiles overlap by `overlap` input cells; in an overlap each output pixel is the weighted
 * mean of the tiles covering it, the weights ramping linearly across the overlap, so no seam
 * shows. (Decoder normalisation statistics differ slightly per tile, which is why this is only
 * used for images too large to decode whole.)
 */
#pragma once

#include <stdint.h>

#include "gc-error.h"

/* Computes out[c_out, th·scale, tw·scale] from in[c_in, th, tw] (one tile). */
typedef gc_status (*gc_tile_fn) (void *ctx, float *out, const float *in, int64_t th, int64_t tw,
                                 gc_error *err);

/* out[c_out, h·scale, w·scale] from in[c_in, h, w] by tiles of at most tile × tile cells. */
gc_status gc_tiled_apply (float *out, int64_t c_out, int64_t scale, const float *in,
                          int64_t c_in, int64_t h, int64_t w, int64_t tile, int64_t overlap,
                          gc_tile_fn fn, void *ctx, gc_error *err);
