/* PNG reading and writing: pixel conversion as diffusers does it, text chunks as A1111 and PIL
 * write them, every colour type libpng reads, damaged files, and saves that fail (missing or
 * read-only folder, a full disk simulated with RLIMIT_FSIZE) without leaving a temporary file
 * or harming the file that was there. Every PNG is made by the test itself. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "gouache-error.h"
#include "gouache-infotext.h"
#include "gouache-png.h"

/* ---- helpers ---- */

/* The type of the text chunk with this keyword ("tEXt", "zTXt", "iTXt"), or NULL. */
static char *
text_chunk_type (GBytes     *png,
                 const char *key)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (png, &size);
  gsize pos = 8;

  while (pos + 12 <= size)
    {
      guint32 length = (guint32) data[pos] << 24 | data[pos + 1] << 16 | data[pos + 2] << 8 | data[pos + 3];
      const char *type = (const char *) data + pos + 4;
      const char *body = (const char *) data + pos + 8;

      if ((memcmp (type, "tEXt", 4) == 0 || memcmp (type, "zTXt", 4) == 0 ||
           memcmp (type, "iTXt", 4) == 0) &&
          length > strlen (key) && memcmp (body, key, strlen (key) + 1) == 0)
        return g_strndup (type, 4);
      pos += 12 + (gsize) length;
    }
  return NULL;
}

static GBytes *
read_file (const char *path)
{
  char *contents = NULL;
  gsize length = 0;
  g_autoptr(GError) error = NULL;

  g_file_get_contents (path, &contents, &length, &error);
  g_assert_no_error (error);
  return g_bytes_new_take (contents, length);
}

static guint
count_files (const char *dir)
{
  g_autoptr(GDir) listing = g_dir_open (dir, 0, NULL);
  guint n = 0;

  g_assert_nonnull (listing);
  while (g_dir_read_name (listing) != NULL)
    n++;
  return n;
}

static void
remove_tree (const char *dir)
{
  g_autoptr(GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;

  while (listing != NULL && (name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_remove (path);
    }
  g_rmdir (dir);
}

static guint8 *
noise_rgb (guint width,
           guint height)
{
  guint8 *rgb = g_new (guint8, (gsize) width * height * 3);

  for (gsize i = 0; i < (gsize) width * height * 3; i++)
    rgb[i] = (guint8) g_test_rand_int_range (0, 256);
  return rgb;
}

/* A PNG made directly with libpng, in whatever form a test needs. */
typedef struct {
  guint width;
  guint height;
  int bit_depth;
  int color_type;
  int interlace;
  const guint8 *rows;       /* packed rows in libpng's layout */
  const png_color *palette;
  int n_palette;
  const guint8 *trns;
  int n_trns;
  png_text *before;         /* text chunks before the image data */
  int n_before;
  png_text *after;          /* and after it */
  int n_after;
} RawPng;

static void
append_bytes (png_structp png,
              png_bytep   data,
              size_t      length)
{
  g_byte_array_append (png_get_io_ptr (png), data, length);
}

static GBytes *
raw_png (const RawPng *spec)
{
  GByteArray *out = g_byte_array_new ();
  png_structp png = png_create_write_struct (PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct (png);
  png_infop end_info = png_create_info_struct (png);
  g_autofree png_bytep *rows = g_new (png_bytep, spec->height);
  size_t rowbytes;

  if (setjmp (png_jmpbuf (png)))
    g_error ("libpng could not write the test image");

  png_set_write_fn (png, out, append_bytes, NULL);
  png_set_IHDR (png, info, spec->width, spec->height, spec->bit_depth, spec->color_type,
                spec->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (spec->palette != NULL)
    png_set_PLTE (png, info, spec->palette, spec->n_palette);
  if (spec->trns != NULL)
    png_set_tRNS (png, info, spec->trns, spec->n_trns, NULL);
  if (spec->n_before > 0)
    png_set_text (png, info, spec->before, spec->n_before);
  if (spec->n_after > 0)
    png_set_text (png, end_info, spec->after, spec->n_after);

  png_write_info (png, info);
  rowbytes = png_get_rowbytes (png, info);
  for (guint y = 0; y < spec->height; y++)
    rows[y] = (png_bytep) spec->rows + y * rowbytes;
  png_write_image (png, rows);
  png_write_end (png, end_info);
  png_destroy_info_struct (png, &end_info);
  png_destroy_write_struct (&png, &info);

  return g_byte_array_free_to_bytes (out);
}

static GouachePngImage *
load_ok (GBytes *bytes)
{
  g_autoptr(GError) error = NULL;
  GouachePngImage *image = gouache_png_load_bytes (bytes, &error);

  g_assert_no_error (error);
  g_assert_nonnull (image);
  return image;
}

/* ---- pixels ---- */

static void
test_float_to_rgb8 (void)
{
  /* one pixel per column: -1, 1, 0 (127.5, rounded half to even: 128), out of range, NaN */
  const float chw[3 * 5] = {
    -1.0f, 1.0f, 0.0f, 2.0f, NAN,
    -3.0f, 0.5f, -0.5f, -1.5f, 1.0f,
    (2.0f * 3.0f / 255.0f) - 1.0f, 0.001f, -0.999f, 0.99f, -1.0f,
  };
  guint8 rgb[5 * 3];

  gouache_png_rgb8_from_float (rgb, chw, 5, 1);
  g_assert_cmpuint (rgb[0 * 3 + 0], ==, 0);
  g_assert_cmpuint (rgb[1 * 3 + 0], ==, 255);
  g_assert_cmpuint (rgb[2 * 3 + 0], ==, 128);
  g_assert_cmpuint (rgb[3 * 3 + 0], ==, 255);
  g_assert_cmpuint (rgb[4 * 3 + 0], ==, 0);
  g_assert_cmpuint (rgb[0 * 3 + 1], ==, 0);
  g_assert_cmpuint (rgb[1 * 3 + 1], ==, 191);   /* 191.25 */
  g_assert_cmpuint (rgb[2 * 3 + 1], ==, 64);    /* 63.75 */
  g_assert_cmpuint (rgb[3 * 3 + 1], ==, 0);
  g_assert_cmpuint (rgb[4 * 3 + 1], ==, 255);
  g_assert_cmpuint (rgb[0 * 3 + 2], ==, 3);
  g_assert_cmpuint (rgb[1 * 3 + 2], ==, 128);   /* 127.6275 */
  g_assert_cmpuint (rgb[2 * 3 + 2], ==, 0);     /* 0.1275 */
  g_assert_cmpuint (rgb[3 * 3 + 2], ==, 254);   /* 253.725 */
  g_assert_cmpuint (rgb[4 * 3 + 2], ==, 0);
}

static void
test_rgb8_to_float (void)
{
  const guint8 rgb[2 * 3] = { 0, 255, 128, 51, 1, 254 };
  float chw[3 * 2];

  gouache_png_float_from_rgb8 (chw, rgb, 2, 1);
  g_assert_cmpfloat (chw[0], ==, -1.0f);                           /* R of pixel 0 */
  g_assert_cmpfloat (chw[1], ==, 2.0f * (51.0f / 255.0f) - 1.0f);  /* R of pixel 1 */
  g_assert_cmpfloat (chw[2], ==, 1.0f);                            /* G of pixel 0 */
  g_assert_cmpfloat (chw[4], ==, 2.0f * (128.0f / 255.0f) - 1.0f); /* B of pixel 0 */
  g_assert_cmpfloat (chw[5], ==, 2.0f * (254.0f / 255.0f) - 1.0f);

  /* every byte comes back from its float */
  for (guint v = 0; v < 256; v++)
    {
      guint8 in[3] = { (guint8) v, (guint8) v, (guint8) v };
      guint8 back[3];
      float f[3];

      gouache_png_float_from_rgb8 (f, in, 1, 1);
      gouache_png_rgb8_from_float (back, f, 1, 1);
      g_assert_cmpuint (back[0], ==, v);
    }
}

/* ---- round trips ---- */

static void
test_round_trip_float (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-png-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "image.png", NULL);
  const guint width = 37, height = 23;
  g_autofree float *chw = g_new (float, 3 * width * height);
  g_autofree guint8 *expected = g_new (guint8, 3 * width * height);
  g_autofree float *back = NULL;
  g_autoptr(GouachePngImage) image = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *type = NULL;
  const GouachePngText text[] = {
    { "parameters", "café, 1girl\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 37x23" },
    { "Comment", "made by the test 🎨" },
  };

  for (gsize i = 0; i < 3 * width * height; i++)
    chw[i] = (float) g_test_rand_double_range (-1.2, 1.2);
  gouache_png_rgb8_from_float (expected, chw, width, height);

  g_assert_true (gouache_png_save_float (path, chw, width, height, text, G_N_ELEMENTS (text), &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_files (dir), ==, 1);

  bytes = read_file (path);
  type = text_chunk_type (bytes, "parameters");
  g_assert_cmpstr (type, ==, "tEXt");   /* Latin-1: tEXt, as PIL writes it */
  g_clear_pointer (&type, g_free);
  type = text_chunk_type (bytes, "Comment");
  g_assert_cmpstr (type, ==, "iTXt");   /* beyond Latin-1: iTXt */

  image = gouache_png_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (image->width, ==, width);
  g_assert_cmpuint (image->height, ==, height);
  g_assert_cmpmem (image->pixels, 3 * width * height, expected, 3 * width * height);
  g_assert_cmpuint (g_hash_table_size (image->text), ==, 2);
  g_assert_cmpstr (g_hash_table_lookup (image->text, "parameters"), ==, text[0].value);
  g_assert_cmpstr (g_hash_table_lookup (image->text, "Comment"), ==, text[1].value);

  back = gouache_png_image_to_float (image);
  for (gsize c = 0; c < 3; c++)
    for (gsize i = 0; i < (gsize) width * height; i++)
      g_assert_cmpfloat (back[c * width * height + i], ==,
                         2.0f * (expected[i * 3 + c] / 255.0f) - 1.0f);

  remove_tree (dir);
}

/* Gouache's own settings go out through "parameters" and come back the same. */
static void
test_round_trip_parameters (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-png-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "castle.png", NULL);
  g_autoptr(GouacheGenerationInfo) info = gouache_generation_info_new ();
  g_autoptr(GouacheGenerationInfo) back = NULL;
  g_autoptr(GouachePngImage) image = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *rgb = noise_rgb (8, 8);
  g_autofree char *parameters = NULL;
  g_autofree char *again = NULL;

  info->prompt = g_strdup ("城, \"castle\": on a hill\nat dusk");
  info->negative_prompt = g_strdup ("blurry");
  info->steps = 20;
  info->sampler = g_strdup ("Euler a");
  info->cfg_scale = 7.0;
  info->seed = 42;
  info->width = 8;
  info->height = 8;
  parameters = gouache_infotext_format (info);

  g_assert_true (gouache_png_save_rgb8 (path, rgb, 8, 8,
                                        &(GouachePngText) { "parameters", parameters }, 1, &error));
  g_assert_no_error (error);
  image = gouache_png_load (path, &error);
  g_assert_no_error (error);
  back = gouache_infotext_parse (g_hash_table_lookup (image->text, "parameters"), &error);
  g_assert_no_error (error);
  again = gouache_infotext_format (back);
  g_assert_cmpstr (again, ==, parameters);
  g_assert_cmpstr (back->prompt, ==, info->prompt);
  g_assert_cmpmem (image->pixels, 8 * 8 * 3, rgb, 8 * 8 * 3);

  remove_tree (dir);
}

/* ---- reading what other programs write ---- */

static void
test_read_gray (void)
{
  const guint8 gray8[] = { 0, 200, 17 };
  const guint8 gray16[] = { 0x00, 0x00, 0xff, 0xff, 0x80, 0x80, 0x12, 0x34 };
  const guint8 gray1[] = { 0xa0 }; /* 1, 0, 1 */
  const guint8 gray_alpha[] = { 100, 255, 0, 0 };
  const struct {
    RawPng spec;
    const guint8 *expected;
    guint n;
  } cases[] = {
    { { 3, 1, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, gray8 }, (const guint8[]) { 0, 200, 17 }, 3 },
    { { 4, 1, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, gray16 }, (const guint8[]) { 0, 255, 128, 18 }, 4 },
    { { 3, 1, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, gray1 }, (const guint8[]) { 255, 0, 255 }, 3 },
    { { 2, 1, 8, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_INTERLACE_NONE, gray_alpha }, (const guint8[]) { 100, 255 }, 2 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) bytes = raw_png (&cases[i].spec);
      g_autoptr(GouachePngImage) image = load_ok (bytes);

      g_assert_cmpuint (image->width, ==, cases[i].n);
      for (guint x = 0; x < cases[i].n; x++)
        for (guint c = 0; c < 3; c++)
          g_assert_cmpuint (image->pixels[x * 3 + c], ==, cases[i].expected[x]);
    }
}

/* A 4-bit palette with tRNS: transparency is composited over white. */
static void
test_read_palette (void)
{
  const png_color palette[] = { { 255, 0, 0 }, { 0, 255, 0 }, { 0, 0, 255 } };
  const guint8 trns[] = { 255, 0, 128 };
  const guint8 indices[] = { 0x01, 0x20 }; /* 0, 1, 2, 0 */
  RawPng spec = { 4, 1, 4, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, indices,
                  palette, G_N_ELEMENTS (palette), trns, G_N_ELEMENTS (trns) };
  g_autoptr(GBytes) bytes = raw_png (&spec);
  g_autoptr(GouachePngImage) image = load_ok (bytes);
  const guint8 expected[] = { 255, 0, 0, 255, 255, 255, 127, 127, 255, 255, 0, 0 };

  g_assert_cmpmem (image->pixels, 12, expected, sizeof expected);
}

static void
test_read_rgba16_interlaced (void)
{
  /* 16-bit RGBA, Adam7 interlaced, 9 × 7 so every pass has pixels */
  const guint width = 9, height = 7;
  g_autofree guint8 *rows = g_new (guint8, width * height * 8);
  g_autofree guint8 *expected = g_new (guint8, width * height * 3);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GouachePngImage) image = NULL;
  RawPng spec = { width, height, 16, PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_ADAM7, NULL };

  for (guint i = 0; i < width * height; i++)
    {
      guint8 r = (guint8) (i * 4), g = (guint8) (255 - i), b = (guint8) (i * 7);
      gboolean clear = i % 5 == 0;
      const guint8 px[8] = { r, r, g, g, b, b, clear ? 0 : 0xff, clear ? 0 : 0xff };

      memcpy (rows + i * 8, px, 8);
      expected[i * 3 + 0] = clear ? 255 : r;
      expected[i * 3 + 1] = clear ? 255 : g;
      expected[i * 3 + 2] = clear ? 255 : b;
    }
  spec.rows = rows;
  bytes = raw_png (&spec);
  image = load_ok (bytes);
  g_assert_cmpmem (image->pixels, width * height * 3, expected, width * height * 3);
}

/* tEXt in Latin-1, zTXt, compressed iTXt, chunks after the image data, a repeated key. */
static void
test_read_text_chunks (void)
{
  const guint8 pixel[] = { 1, 2, 3 };
  png_text before[] = {
    { .compression = PNG_TEXT_COMPRESSION_NONE, .key = (char *) "parameters",
      .text = (char *) "caf\xe9, 1girl\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 9, Size: 1x1" },
    { .compression = PNG_TEXT_COMPRESSION_zTXt, .key = (char *) "Comment",
      .text = (char *) "squeezed text, squeezed text, squeezed text" },
  };
  png_text after[] = {
    { .compression = PNG_ITXT_COMPRESSION_zTXt, .key = (char *) "workflow",
      .text = (char *) "{\"nodes\": [\"ノード\"]}", .lang = (char *) "", .lang_key = (char *) "" },
    { .compression = PNG_TEXT_COMPRESSION_NONE, .key = (char *) "parameters",
      .text = (char *) "a second parameters chunk" },
  };
  RawPng spec = { 1, 1, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, pixel,
                  .before = before, .n_before = G_N_ELEMENTS (before),
                  .after = after, .n_after = G_N_ELEMENTS (after) };
  g_autoptr(GBytes) bytes = raw_png (&spec);
  g_autoptr(GouachePngImage) image = load_ok (bytes);
  g_autoptr(GouacheGenerationInfo) info = NULL;
  g_autofree char *type = text_chunk_type (bytes, "workflow");

  g_assert_cmpstr (type, ==, "iTXt");
  g_assert_cmpuint (g_hash_table_size (image->text), ==, 3);
  g_assert_cmpstr (g_hash_table_lookup (image->text, "Comment"), ==,
                   "squeezed text, squeezed text, squeezed text");
  g_assert_cmpstr (g_hash_table_lookup (image->text, "workflow"), ==, "{\"nodes\": [\"ノード\"]}");
  info = gouache_infotext_parse (g_hash_table_lookup (image->text, "parameters"), NULL);
  g_assert_cmpstr (info->prompt, ==, "café, 1girl");
  g_assert_cmpuint (info->seed, ==, 9);
}

/* ---- damaged files ---- */

static void
assert_load_fails (GBytes *bytes,
                   int     code)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GouachePngImage) image = gouache_png_load_bytes (bytes, &error);

  g_assert_null (image);
  g_assert_error (error, GOUACHE_ERROR, code);
  g_test_message ("%s", error->message);
}

static void
test_read_damaged (void)
{
  g_autofree guint8 *rgb = noise_rgb (64, 64);
  g_autofree char *dir = g_dir_make_tmp ("gouache-png-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "whole.png", NULL);
  g_autofree char *cut_path = g_build_filename (dir, "cut.png", NULL);
  g_autoptr(GBytes) whole = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GouachePngImage) image = NULL;
  const guint8 *data;
  gsize size;
  const gsize cuts[] = { 7, 8, 20, 33, 100, 0 /* half */, 0 /* all but the last byte */ };
  const guint8 big_ihdr[] = { 0x00, 0x00, 0x9c, 0x40 }; /* width 40000 */

  g_assert_true (gouache_png_save_rgb8 (path, rgb, 64, 64, NULL, 0, &error));
  whole = read_file (path);
  data = g_bytes_get_data (whole, &size);

  for (gsize i = 0; i < G_N_ELEMENTS (cuts); i++)
    {
      gsize cut = i == 5 ? size / 2 : i == 6 ? size - 1 : cuts[i];
      g_autoptr(GBytes) part = g_bytes_new (data, cut);

      assert_load_fails (part, GOUACHE_ERROR_FORMAT);
    }

  /* a truncated file on disk: the message names it */
  g_assert_true (g_file_set_contents (cut_path, (const char *) data, size / 2, NULL));
  image = gouache_png_load (cut_path, &error);
  g_assert_null (image);
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "cut.png"));
  g_assert_nonnull (strstr (error->message, "truncated"));
  g_clear_error (&error);

  /* a flipped bit in the image data: the CRC no longer matches */
  {
    g_autofree guint8 *copy = g_memdup2 (data, size);
    g_autoptr(GBytes) flipped = NULL;

    copy[size / 2] ^= 0x10;
    flipped = g_bytes_new (copy, size);
    assert_load_fails (flipped, GOUACHE_ERROR_FORMAT);
  }

  /* wider than GOUACHE_PNG_MAX_SIDE: well-formed, but not something Gouache reads */
  {
    g_autofree guint8 *copy = g_memdup2 (data, size);
    g_autoptr(GBytes) wide = NULL;
    guint32 crc;

    memcpy (copy + 16, big_ihdr, 4);
    crc = (guint32) crc32 (0, copy + 12, 17);
    copy[29] = (guint8) (crc >> 24);
    copy[30] = (guint8) (crc >> 16);
    copy[31] = (guint8) (crc >> 8);
    copy[32] = (guint8) crc;
    wide = g_bytes_new (copy, size);
    assert_load_fails (wide, GOUACHE_ERROR_UNSUPPORTED);
  }

  /* not a PNG at all, and no file */
  {
    g_autoptr(GBytes) text = g_bytes_new_static ("hello, world", 12);
    g_autofree char *missing = g_build_filename (dir, "missing.png", NULL);

    assert_load_fails (text, GOUACHE_ERROR_FORMAT);
    image = gouache_png_load (missing, &error);
    g_assert_null (image);
    g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  }

  remove_tree (dir);
}

/* ---- saves that fail ---- */

static void
test_save_bad_arguments (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-png-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "x.png", NULL);
  const guint8 rgb[3] = { 0 };
  const char *bad_keys[] = { "", " lead", "trail ", "two  spaces", "tab\there",
                             "eighty-characters-are-one-more-than-a-png-keyword-may-have-0123456789-0123456789" };
  g_autoptr(GError) error = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (bad_keys); i++)
    {
      GouachePngText text = { bad_keys[i], "v" };

      g_assert_false (gouache_png_save_rgb8 (path, rgb, 1, 1, &text, 1, &error));
      g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID);
      g_clear_error (&error);
    }
  g_assert_false (gouache_png_save_rgb8 (path, rgb, 0, 1, NULL, 0, &error));
  g_assert_error (error, GOUACHE_ERROR, GOUACHE_ERROR_INVALID);
  g_assert_cmpuint (count_files (dir), ==, 0);

  remove_tree (dir);
}

static void
test_save_unwritable_folder (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-png-XXXXXX", NULL);
  g_autofree char *missing = g_build_filename (dir, "no-such-folder", "x.png", NULL);
  g_autofree char *path = g_build_filename (dir, "x.png", NULL);
  g_autofree guint8 *rgb = noise_rgb (4, 4);
  g_autoptr(GBytes) before = NULL;
  g_autoptr(GBytes) after = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_false (gouache_png_save_rgb8 (missing, rgb, 4, 4, NULL, 0, &error));
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_nonnull (strstr (error->message, "x.png"));
  g_clear_error (&error);

  if (geteuid () == 0)
    {
      g_test_skip ("root writes into read-only folders");
      remove_tree (dir);
      return;
    }

  g_assert_true (gouache_png_save_rgb8 (path, rgb, 4, 4, NULL, 0, &error));
  before = read_file (path);
  g_assert_cmpint (g_chmod (dir, 0555), ==, 0);
  rgb[0] ^= 0xff;
  g_assert_false (gouache_png_save_rgb8 (path, rgb, 4, 4, NULL, 0, &error));
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_ACCES);
  g_assert_cmpint (g_chmod (dir, 0755), ==, 0);
  after = read_file (path);
  g_assert_true (g_bytes_equal (before, after));
  g_assert_cmpuint (count_files (dir), ==, 1);

  remove_tree (dir);
}

/* The disk fills up halfway through: simulated in a child process whose files may not grow
 * past 4 KiB (RLIMIT_FSIZE, with SIGXFSZ ignored so write() fails with EFBIG). */
static void
test_save_disk_full (void)
{
  g_autofree char *dir = g_dir_make_tmp ("gouache-png-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "image.png", NULL);
  g_autofree guint8 *small = noise_rgb (8, 8);
  g_autofree guint8 *big = noise_rgb (128, 128);
  g_autoptr(GBytes) before = NULL;
  g_autoptr(GBytes) after = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;
  pid_t pid;

  g_assert_true (gouache_png_save_rgb8 (path, small, 8, 8, NULL, 0, &error));
  g_assert_no_error (error);
  before = read_file (path);

  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      struct rlimit limit = { 4096, 4096 };
      GError *child_error = NULL;
      gboolean saved;

      signal (SIGXFSZ, SIG_IGN);
      if (setrlimit (RLIMIT_FSIZE, &limit) != 0)
        _exit (2);
      saved = gouache_png_save_rgb8 (path, big, 128, 128, NULL, 0, &child_error);
      if (saved || child_error == NULL)
        _exit (3);
      if (g_getenv ("G_MESSAGES_DEBUG") != NULL)
        g_printerr ("%s\n", child_error->message);
      /* EFBIG has no GFileError code of its own: G_FILE_ERROR_FAILED */
      _exit (child_error->domain == G_FILE_ERROR ? 0 : 4);
    }

  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);

  /* the old image is intact and no temporary file is left */
  after = read_file (path);
  g_assert_true (g_bytes_equal (before, after));
  g_assert_cmpuint (count_files (dir), ==, 1);

  remove_tree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/app/png/pixels/float-to-rgb8", test_float_to_rgb8);
  g_test_add_func ("/app/png/pixels/rgb8-to-float", test_rgb8_to_float);
  g_test_add_func ("/app/png/round-trip/float", test_round_trip_float);
  g_test_add_func ("/app/png/round-trip/parameters", test_round_trip_parameters);
  g_test_add_func ("/app/png/read/gray", test_read_gray);
  g_test_add_func ("/app/png/read/palette", test_read_palette);
  g_test_add_func ("/app/png/read/rgba16-interlaced", test_read_rgba16_interlaced);
  g_test_add_func ("/app/png/read/text-chunks", test_read_text_chunks);
  g_test_add_func ("/app/png/read/damaged", test_read_damaged);
  g_test_add_func ("/app/png/save/bad-arguments", test_save_bad_arguments);
  g_test_add_func ("/app/png/save/unwritable-folder", test_save_unwritable_folder);
  g_test_add_func ("/app/png/save/disk-full", test_save_disk_full);

  return g_test_run ();
}
