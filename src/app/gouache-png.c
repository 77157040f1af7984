/* gouache-png.c: PNG images with their text chunks, read and written with libpng
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * libpng reports errors by calling an error function that must not return; ours records the
 * message and longjmp()s back into the one function per direction that called setjmp()
 * (encode_png, decode_png). Everything those functions allocate or change lives in a
 * heap-allocated PngWriter or PngReader, never in their own locals, so nothing is left
 * indeterminate by the jump and the caller frees it all on either path.
 */

#define G_LOG_DOMAIN "gouache-png"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <string.h>

#include "gouache-error.h"
#include "gouache-png.h"

/* libpng's keyword limit */
#define MAX_KEY_LENGTH 79

typedef struct {
  jmp_buf jump;
  char message[256];
} PngFailure;

static void
on_png_error (png_structp     png,
              png_const_charp message)
{
  PngFailure *failure = png_get_error_ptr (png);

  g_strlcpy (failure->message, message, sizeof failure->message);
  longjmp (failure->jump, 1);
}

static void
on_png_warning (png_structp     png,
                png_const_charp message)
{
  g_debug ("libpng: %s", message);
}

/* ---- pixels ---- */

/**
 * gouache_png_rgb8_from_float:
 * @rgb: (out caller-allocates): [height, width, 3] RGB8
 * @chw: [3, height, width] in [-1, 1], as the VAE decodes it
 * @width: image width
 * @height: image height
 *
 * Converts as diffusers does, in float: (x / 2 + 0.5) clamped to [0, 1], times 255, rounded
 * half to even (numpy's round); NaN becomes 0.
 */
void
gouache_png_rgb8_from_float (guint8      *rgb,
                             const float *chw,
                             guint        width,
                             guint        height)
{
  gsize plane = (gsize) width * height;

  for (gsize i = 0; i < plane; i++)
    for (gsize c = 0; c < 3; c++)
      {
        float v = chw[c * plane + i] / 2.0f + 0.5f;

        if (!(v >= 0.0f))
          v = 0.0f;
        else if (v > 1.0f)
          v = 1.0f;
        rgb[i * 3 + c] = (guint8) rintf (v * 255.0f);
      }
}

/**
 * gouache_png_float_from_rgb8:
 * @chw: (out caller-allocates): [3, height, width] in [-1, 1]
 * @rgb: [height, width, 3] RGB8
 * @width: image width
 * @height: image height
 *
 * Converts as diffusers' VaeImageProcessor does for img2img, in float: 2 · (u / 255) − 1.
 */
void
gouache_png_float_from_rgb8 (float        *chw,
                             const guint8 *rgb,
                             guint         width,
                             guint         height)
{
  gsize plane = (gsize) width * height;

  for (gsize i = 0; i < plane; i++)
    for (gsize c = 0; c < 3; c++)
      chw[c * plane + i] = 2.0f * ((float) rgb[i * 3 + c] / 255.0f) - 1.0f;
}

/* ---- writing ---- */

typedef struct {
  PngFailure failure;
  png_structp png;
  png_infop info;
  png_bytep *rows;
  png_text *chunks;
  GPtrArray *strings; /* the chunks' text, converted */
  GByteArray *out;
} PngWriter;

static void
png_writer_free (PngWriter *writer)
{
  png_destroy_write_struct (&writer->png, &writer->info);
  g_free (writer->rows);
  g_free (writer->chunks);
  g_ptr_array_unref (writer->strings);
  g_clear_pointer (&writer->out, g_byte_array_unref);
  g_free (writer);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PngWriter, png_writer_free)

static void
write_to_array (png_structp png,
                png_bytep   data,
                size_t      length)
{
  PngWriter *writer = png_get_io_ptr (png);

  g_byte_array_append (writer->out, data, length);
}

static void
flush_nothing (png_structp png)
{
}

/* A PNG keyword: printable ASCII, no spaces at either end or two in a row. */
static gboolean
is_valid_key (const char *key)
{
  gsize len = strlen (key);

  if (len == 0 || len > MAX_KEY_LENGTH || key[0] == ' ' || key[len - 1] == ' ')
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (key[i] < ' ' || key[i] > '~' || (key[i] == ' ' && key[i + 1] == ' '))
      return FALSE;
  return TRUE;
}

/* @utf8 in Latin-1, or NULL if a character is beyond U+00FF (PIL's add_text test). */
static char *
latin1_from_utf8 (const char *utf8)
{
  g_autoptr(GString) out = g_string_new (NULL);

  for (const char *p = utf8; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (c > 0xff)
        return NULL;
      g_string_append_c (out, (char) c);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static gboolean
encode_png (PngWriter *writer,
            guint      width,
            guint      height,
            int        n_chunks)
{
  if (setjmp (writer->failure.jump))
    return FALSE;

  png_set_write_fn (writer->png, writer, write_to_array, flush_nothing);
  png_set_IHDR (writer->png, writer->info, width, height, 8, PNG_COLOR_TYPE_RGB,
                PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (n_chunks > 0)
    png_set_text (writer->png, writer->info, writer->chunks, n_chunks);
  png_write_info (writer->png, writer->info);
  png_write_image (writer->png, writer->rows);
  png_write_end (writer->png, NULL);
  return TRUE;
}

static GByteArray *
encode (const guint8          *rgb,
        guint                  width,
        guint                  height,
        const GouachePngText  *text,
        gsize                  n_text,
        GError               **error)
{
  g_autoptr(PngWriter) writer = g_new0 (PngWriter, 1);
  gsize stride = (gsize) width * 3;

  writer->strings = g_ptr_array_new_with_free_func (g_free);
  writer->out = g_byte_array_new ();

  if (width == 0 || height == 0 || width > PNG_UINT_31_MAX || height > PNG_UINT_31_MAX)
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
                   _("A PNG image cannot be %u × %u pixels"), width, height);
      return NULL;
    }
  if (n_text > G_MAXINT)
    {
      g_set_error_literal (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
                           _("Too many text chunks for one PNG image"));
      return NULL;
    }

  writer->chunks = g_new0 (png_text, MAX (n_text, 1));
  for (gsize i = 0; i < n_text; i++)
    {
      png_text *chunk = &writer->chunks[i];
      char *latin1;

      if (!is_valid_key (text[i].key))
        {
          g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
                       _("“%s” cannot be a PNG text key"), text[i].key);
          return NULL;
        }
      if (!g_utf8_validate (text[i].value, -1, NULL))
        {
          g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
                       _("The PNG text “%s” is not valid UTF-8"), text[i].key);
          return NULL;
        }

      chunk->key = (png_charp) text[i].key;
      latin1 = latin1_from_utf8 (text[i].value);
      if (latin1 != NULL)
        {
          g_ptr_array_add (writer->strings, latin1);
          chunk->compression = PNG_TEXT_COMPRESSION_NONE;
          chunk->text = latin1;
        }
      else
        {
          chunk->compression = PNG_ITXT_COMPRESSION_NONE;
          chunk->text = (png_charp) text[i].value;
          chunk->lang = (png_charp) "";
          chunk->lang_key = (png_charp) "";
        }
    }

  writer->rows = g_new (png_bytep, height);
  for (guint y = 0; y < height; y++)
    writer->rows[y] = (png_bytep) rgb + y * stride;

  writer->png = png_create_write_struct (PNG_LIBPNG_VER_STRING, &writer->failure,
                                         on_png_error, on_png_warning);
  if (writer->png != NULL)
    writer->info = png_create_info_struct (writer->png);
  if (writer->info == NULL)
    {
      g_set_error_literal (error, GOUACHE_ERROR, GOUACHE_ERROR_NOMEM,
                           _("Not enough memory to write a PNG image"));
      return NULL;
    }

  if (!encode_png (writer, width, height, (int) n_text))
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID,
                   _("Could not encode the PNG image: %s"), writer->failure.message);
      return NULL;
    }

  return g_steal_pointer (&writer->out);
}

/**
 * gouache_png_save_rgb8:
 * @path: where to save, in the file-name encoding
 * @rgb: [height, width, 3] RGB8
 * @width: image width
 * @height: image height
 * @text: (array length=n_text) (nullable): text chunks, such as "parameters"
 * @n_text: number of entries in @text
 * @error: return location for a #GError, or %NULL
 *
 * Saves an 8-bit RGB PNG with @text before the image data. The file is written next to @path
 * under a temporary name, synced to disk and renamed over @path, so readers see the old file
 * or the new one, never a part; on failure the temporary file is removed and @path is untouched.
 *
 * Returns: %TRUE on success; on failure @error is in %GOUACHE_ERROR (bad arguments) or
 *   %G_FILE_ERROR (the folder is not writable, the disk is full, …)
 */
gboolean
gouache_png_save_rgb8 (const char            *path,
                       const guint8          *rgb,
                       guint                  width,
                       guint                  height,
                       const GouachePngText  *text,
                       gsize                  n_text,
                       GError               **error)
{
  g_autoptr(GByteArray) png = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree char *display = NULL;

  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (rgb != NULL, FALSE);
  g_return_val_if_fail (text != NULL || n_text == 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  display = g_filename_display_basename (path);
  png = encode (rgb, width, height, text, n_text, &local_error);
  if (png == NULL ||
      !g_file_set_contents_full (path, (const char *) png->data, png->len,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0666, &local_error))
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                  _("Could not save the image “%s”: "), display);
      return FALSE;
    }
  return TRUE;
}

/**
 * gouache_png_save_float:
 * @path: where to save, in the file-name encoding
 * @chw: [3, height, width] in [-1, 1], as the VAE decodes it
 * @width: image width
 * @height: image height
 * @text: (array length=n_text) (nullable): text chunks, such as "parameters"
 * @n_text: number of entries in @text
 * @error: return location for a #GError, or %NULL
 *
 * Converts with gouache_png_rgb8_from_float() and saves with gouache_png_save_rgb8().
 *
 * Returns: %TRUE on success
 */
gboolean
gouache_png_save_float (const char            *path,
                        const float           *chw,
                        guint                  width,
                        guint                  height,
                        const GouachePngText  *text,
                        gsize                  n_text,
                        GError               **error)
{
  g_autofree guint8 *rgb = NULL;

  g_return_val_if_fail (chw != NULL, FALSE);

  rgb = g_new (guint8, (gsize) width * height * 3);
  gouache_png_rgb8_from_float (rgb, chw, width, height);
  return gouache_png_save_rgb8 (path, rgb, width, height, text, n_text, error);
}

/* ---- reading ---- */

typedef struct {
  PngFailure failure;
  png_structp png;
  png_infop info;
  const guint8 *data;
  gsize size;
  gsize offset;
  png_bytep *rows;
  guint8 *rgba;
  png_uint_32 width;
  png_uint_32 height;
  gboolean too_large;
  gboolean out_of_memory;
} PngReader;

static void
png_reader_free (PngReader *reader)
{
  png_destroy_read_struct (&reader->png, &reader->info, NULL);
  g_free (reader->rows);
  g_free (reader->rgba);
  g_free (reader);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PngReader, png_reader_free)

static void
read_from_memory (png_structp png,
                  png_bytep   out,
                  size_t      length)
{
  PngReader *reader = png_get_io_ptr (png);

  if (length > reader->size - reader->offset)
    png_error (png, _("the file ends too early (it is truncated)"));
  memcpy (out, reader->data + reader->offset, length);
  reader->offset += length;
}

/* Decodes the image as RGBA8 into reader->rgba and reads every chunk up to IEND. */
static gboolean
decode_png (PngReader *reader)
{
  if (setjmp (reader->failure.jump))
    return FALSE;

  png_set_read_fn (reader->png, reader, read_from_memory);
  png_read_info (reader->png, reader->info);
  reader->width = png_get_image_width (reader->png, reader->info);
  reader->height = png_get_image_height (reader->png, reader->info);
  if (reader->width > GOUACHE_PNG_MAX_SIDE || reader->height > GOUACHE_PNG_MAX_SIDE)
    {
      reader->too_large = TRUE;
      png_error (reader->png, "too large");
    }

  /* any colour type and depth to 8-bit RGBA */
  png_set_expand (reader->png);
  png_set_scale_16 (reader->png);
  png_set_gray_to_rgb (reader->png);
  png_set_add_alpha (reader->png, 0xff, PNG_FILLER_AFTER);
  png_set_interlace_handling (reader->png);
  png_read_update_info (reader->png, reader->info);
  if (png_get_rowbytes (reader->png, reader->info) != (size_t) reader->width * 4)
    png_error (reader->png, "unexpected row size after conversion to RGBA");

  reader->rgba = g_try_malloc ((gsize) reader->width * reader->height * 4);
  reader->rows = g_try_new (png_bytep, reader->height);
  if (reader->rgba == NULL || reader->rows == NULL)
    {
      reader->out_of_memory = TRUE;
      png_error (reader->png, "out of memory");
    }
  for (png_uint_32 y = 0; y < reader->height; y++)
    reader->rows[y] = reader->rgba + (gsize) y * reader->width * 4;

  png_read_image (reader->png, reader->rows);
  png_read_end (reader->png, reader->info);
  return TRUE;
}

static char *
utf8_from_latin1 (const char *text,
                  gsize       length)
{
  g_autoptr(GString) out = g_string_sized_new (length);

  for (gsize i = 0; i < length; i++)
    g_string_append_unichar (out, (guchar) text[i]);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* Text chunks as UTF-8; where a key appears twice, the first chunk wins. */
static GHashTable *
collect_text (PngReader *reader)
{
  GHashTable *text = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  png_textp chunks = NULL;
  int n_chunks = png_get_text (reader->png, reader->info, &chunks, NULL);

  for (int i = 0; i < n_chunks; i++)
    {
      char *key = utf8_from_latin1 (chunks[i].key, strlen (chunks[i].key));
      char *value;

      if (chunks[i].compression >= PNG_ITXT_COMPRESSION_NONE)
        value = g_utf8_make_valid (chunks[i].text, chunks[i].itxt_length);
      else
        value = utf8_from_latin1 (chunks[i].text, chunks[i].text_length);

      if (g_hash_table_contains (text, key))
        {
          g_free (key);
          g_free (value);
        }
      else
        g_hash_table_insert (text, key, value);
    }
  return text;
}

/**
 * gouache_png_load_bytes:
 * @bytes: a PNG file's contents
 * @error: return location for a #GError, or %NULL
 *
 * Decodes a PNG of any colour type and bit depth that libpng reads to 8-bit RGB (16-bit
 * samples are scaled, grey is repeated, a palette is looked up, transparency is composited
 * over white) and collects its tEXt, zTXt and iTXt chunks, before and after the image data.
 *
 * Returns: (transfer full): the image, or %NULL with @error set in %GOUACHE_ERROR
 *   (%GOUACHE_ERROR_FORMAT for a file that is not a PNG, is damaged or truncated;
 *   %GOUACHE_ERROR_UNSUPPORTED for a side longer than %GOUACHE_PNG_MAX_SIDE;
 *   %GOUACHE_ERROR_NOMEM)
 */
GouachePngImage *
gouache_png_load_bytes (GBytes  *bytes,
                        GError **error)
{
  g_autoptr(PngReader) reader = g_new0 (PngReader, 1);
  g_autoptr(GouachePngImage) image = NULL;
  gsize n_pixels;

  g_return_val_if_fail (bytes != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  reader->data = g_bytes_get_data (bytes, &reader->size);
  if (reader->size < 8 || png_sig_cmp (reader->data, 0, 8) != 0)
    {
      g_set_error_literal (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT,
                           _("This is not a PNG image"));
      return NULL;
    }

  reader->png = png_create_read_struct (PNG_LIBPNG_VER_STRING, &reader->failure,
                                        on_png_error, on_png_warning);
  if (reader->png != NULL)
    reader->info = png_create_info_struct (reader->png);
  if (reader->info == NULL)
    {
      g_set_error_literal (error, GOUACHE_ERROR, GOUACHE_ERROR_NOMEM,
                           _("Not enough memory to read a PNG image"));
      return NULL;
    }

  if (!decode_png (reader))
    {
      if (reader->too_large)
        g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_UNSUPPORTED,
                     _("The image is %u × %u pixels; Gouache reads images up to %u pixels wide and high"),
                     (guint) reader->width, (guint) reader->height, (guint) GOUACHE_PNG_MAX_SIDE);
      else if (reader->out_of_memory)
        g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_NOMEM,
                     _("Not enough memory for a PNG image of %u × %u pixels"),
                     (guint) reader->width, (guint) reader->height);
      else
        g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT,
                     _("The PNG image is damaged: %s"), reader->failure.message);
      return NULL;
    }

  image = g_new0 (GouachePngImage, 1);
  image->width = reader->width;
  image->height = reader->height;
  n_pixels = (gsize) image->width * image->height;
  image->pixels = g_try_malloc (n_pixels * 3);
  if (image->pixels == NULL)
    {
      g_set_error (error, GOUACHE_ERROR, GOUACHE_ERROR_NOMEM,
                   _("Not enough memory for a PNG image of %u × %u pixels"),
                   image->width, image->height);
      return NULL;
    }
  for (gsize i = 0; i < n_pixels; i++)
    {
      const guint8 *src = reader->rgba + i * 4;
      guint alpha = src[3];

      for (gsize c = 0; c < 3; c++)
        image->pixels[i * 3 + c] = (guint8) ((src[c] * alpha + 255 * (255 - alpha) + 127) / 255);
    }
  image->text = collect_text (reader);

  return g_steal_pointer (&image);
}

/**
 * gouache_png_load:
 * @path: a PNG file, in the file-name encoding
 * @error: return location for a #GError, or %NULL
 *
 * Reads the file whole and decodes it with gouache_png_load_bytes().
 *
 * Returns: (transfer full): the image, or %NULL with @error set (%G_FILE_ERROR when the file
 *   cannot be read, else as gouache_png_load_bytes(), with the file's name in the message)
 */
GouachePngImage *
gouache_png_load (const char  *path,
                  GError     **error)
{
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree char *display = NULL;
  char *contents = NULL;
  gsize length = 0;
  GouachePngImage *image;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_file_get_contents (path, &contents, &length, error))
    return NULL;
  bytes = g_bytes_new_take (contents, length);

  image = gouache_png_load_bytes (bytes, &local_error);
  if (image == NULL)
    {
      display = g_filename_display_basename (path);
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "“%s”: ", display);
    }
  return image;
}

/**
 * gouache_png_image_to_float:
 * @image: a decoded image
 *
 * Returns: (transfer full): [3, height, width] floats in [-1, 1] for img2img, from
 *   gouache_png_float_from_rgb8(); free with g_free()
 */
float *
gouache_png_image_to_float (const GouachePngImage *image)
{
  float *chw;

  g_return_val_if_fail (image != NULL, NULL);

  chw = g_new (float, (gsize) image->width * image->height * 3);
  gouache_png_float_from_rgb8 (chw, image->pixels, image->width, image->height);
  return chw;
}

void
gouache_png_image_free (GouachePngImage *image)
{
  if (image == NULL)
    return;

  g_free (image->pixels);
  if (image->text != NULL)
    g_hash_table_unref (image->text);
  g_free (image);
}
