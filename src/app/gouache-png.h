/* gouache-png.h: PNG images with their text chunks, read and written with libpng
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * Pixels are 8-bit RGB, packed row after row ([height, width, 3]); the engine's images are
 * planar floats in [-1, 1] ([3, height, width]). Saving is atomic: the new image replaces the
 * old file whole, or, on any failure, the old file stays as it was and no temporary file is
 * left behind.
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A text chunk to write. */
typedef struct {
  const char *key;   /* 1 to 79 printable ASCII characters, no leading, trailing or double spaces */
  const char *value; /* UTF-8; written as tEXt when every character is Latin-1, else as iTXt */
} GouachePngText;

/* A decoded image. */
typedef struct {
  guint width;
  guint height;
  guint8 *pixels;   /* [height, width, 3] RGB8; transparency is composited over white */
  GHashTable *text; /* (element-type utf8 utf8): keyword → text, from tEXt, zTXt and iTXt */
} GouachePngImage;

/* The largest width or height Gouache reads. */
#define GOUACHE_PNG_MAX_SIDE 32768

void             gouache_png_rgb8_from_float (guint8                *rgb,
                                              const float           *chw,
                                              guint                  width,
                                              guint                  height);
void             gouache_png_float_from_rgb8 (float                 *chw,
                                              const guint8          *rgb,
                                              guint                  width,
                                              guint                  height);

gboolean         gouache_png_save_rgb8       (const char            *path,
                                              const guint8          *rgb,
                                              guint                  width,
                                              guint                  height,
                                              const GouachePngText  *text,
                                              gsize                  n_text,
                                              GError               **error);
gboolean         gouache_png_save_float      (const char            *path,
                                              const float           *chw,
                                              guint                  width,
                                              guint                  height,
                                              const GouachePngText  *text,
                                              gsize                  n_text,
                                              GError               **error);

GouachePngImage *gouache_png_load            (const char            *path,
                                              GError               **error);
GouachePngImage *gouache_png_load_bytes      (GBytes                *bytes,
                                              GError               **error);
float           *gouache_png_image_to_float  (const GouachePngImage *image);
void             gouache_png_image_free      (GouachePngImage       *image);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GouachePngImage, gouache_png_image_free)

G_END_DECLS
